import { Writable } from 'node:stream';
import { EXIT_UNSUPPORTED_NODE, MIN_NODE_MAJOR } from '../protocol/daemon';

// Checked before anything that loads a native addon, so an old Node gets a sentence, not a crash.
const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_NODE_MAJOR) {
  process.stderr.write(
    `Keel's debug adapter needs Node.js ${MIN_NODE_MAJOR} or newer, but ${process.execPath} is ${process.version}: point the keel.nodePath setting at Node 24.\n`,
  );
  process.exit(EXIT_UNSUPPORTED_NODE);
}

// Stdout carries only the Debug Adapter Protocol: whatever else is written to it (an agent's
// console.log in a live run) goes to stderr.
const writeProtocol = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
const protocol = new Writable({
  write(chunk: Buffer, _encoding, done) {
    writeProtocol(chunk, () => done());
  },
});

// A misbehaving agent (or a promise an expression left behind) must not take the session down.
process.on('uncaughtException', (error) => process.stderr.write(`uncaught error: ${error.stack ?? String(error)}\n`));
process.on('unhandledRejection', (reason) => process.stderr.write(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`));

void import('./session.js').then(({ KeelDebugSession }) => {
  const session = new KeelDebugSession();
  process.on('SIGTERM', () => session.shutdown());
  session.start(process.stdin, protocol);
});
