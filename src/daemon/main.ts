import { EXIT_UNSUPPORTED_NODE, MIN_NODE_MAJOR } from '../protocol/daemon';

// Checked before anything that loads a native addon, so an old Node gets a sentence, not a crash.
const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_NODE_MAJOR) {
  process.stderr.write(
    `Keel's runtime needs Node.js ${MIN_NODE_MAJOR} or newer, but ${process.execPath} is ${process.version}: install Node 24 (nvm install 24, or https://nodejs.org/) and point the keel.nodePath setting at it.\n`,
  );
  process.exit(EXIT_UNSUPPORTED_NODE);
}

void import('./server.js').then(({ serve }) => serve());
