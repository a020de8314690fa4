// One build script, one esbuild context per bundle. Type checking is its own step (`npm run typecheck`).
// Usage: node scripts/build.mjs [--watch] [--production] [--only <bundle,...>] [--outdir <dir>]
// (--only and --outdir build some bundles elsewhere, as a test that checks a minified bundle does)
import * as esbuild from 'esbuild';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const valueOf = (flag) => {
  const index = process.argv.indexOf(flag);
  return index === -1 ? undefined : process.argv[index + 1];
};
const only = valueOf('--only')?.split(',');
const outdir = valueOf('--outdir') ?? 'dist';

// Native addons and esbuild (which the runtime uses to load agent files) stay external.
const runtimeExternals = ['better-sqlite3', 'esbuild', 'isolated-vm'];

const common = {
  bundle: true,
  sourcemap: true,
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};

// keepNames: messages name errors by their class (`attempt 1 failed (ModelError)`), minified or not.
const node = { ...common, platform: 'node', format: 'cjs', target: 'node22', keepNames: true, outdir };
const browser = { ...common, platform: 'browser', format: 'iife', target: 'es2022', outdir, tsconfig: 'tsconfig.webview.json' };

// The keel command is an ES module split at every dynamic import: `dist/cli.mjs` holds only the
// dispatch, and each command loads its own chunks from dist/cli-chunks (keel --version reads a
// few KB, not the whole runtime, the Restate SDK and the openai SDK). Bundled CommonJS packages
// still call require(), which an ES module does not have, so the banner gives it one; and the
// runtime finds the scripts it starts (the sandbox's isolateWorker.js and toolProcess.js) next to
// its bundle through __dirname, which the banner makes the folder of cli.mjs, in chunks too.
const cliChunks = `${outdir}/cli-chunks`;
// Node's own modules and the external packages are required, not imported: an ES module import
// of a built-in makes Node evaluate every export of it first (importing node:fs loads fs/promises
// and readline, node:util the streams), and one of a CommonJS package (esbuild, better-sqlite3)
// makes it scan the package's source for its exports, on every start.
const requiredModules = new RegExp(`^(node:|(${runtimeExternals.join('|')})$)`);
const buildRequire = createRequire(import.meta.url);
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(build) {
    build.onResolve({ filter: requiredModules }, (args) =>
      args.namespace === 'by-require' ? { path: args.path, external: true } : { path: args.path, namespace: 'by-require', pluginData: args.kind },
    );
    build.onLoad({ filter: /.*/, namespace: 'by-require' }, (args) => {
      const required = `require(${JSON.stringify(args.path)})`;
      if (args.pluginData !== 'dynamic-import') return { contents: `module.exports = ${required};`, loader: 'js' };
      // A chunk loaded by import() is an ES module, so it names each export (those the module has here).
      const names = Object.keys(buildRequire(args.path)).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name) && name !== 'default');
      return { contents: `const required = ${required};\nexport const { ${names.join(', ')} } = required;\nexport default required;`, loader: 'js' };
    });
  },
};
const cli = {
  ...node,
  format: 'esm',
  splitting: true,
  entryPoints: { cli: 'src/cli/main.ts' },
  outExtension: { '.js': '.mjs' },
  chunkNames: 'cli-chunks/[name]-[hash]',
  external: runtimeExternals,
  plugins: [builtinsByRequire],
  banner: {
    js: [
      "import { createRequire as keelCreateRequire } from 'node:module';",
      "import { fileURLToPath as keelFileURLToPath } from 'node:url';",
      'const require = keelCreateRequire(import.meta.url);',
      "const __dirname = keelFileURLToPath(new URL(import.meta.url.includes('/cli-chunks/') ? '..' : '.', import.meta.url));",
    ].join(' '),
  },
};

const bundles = [
  { ...node, entryPoints: { extension: 'src/extension/main.ts' }, external: ['vscode'] },
  { ...node, entryPoints: { daemon: 'src/daemon/main.ts' }, external: runtimeExternals },
  cli,
  // The editor starts debugAdapter.js, which turns on the compile cache and loads debugAdapterMain.js.
  { ...node, entryPoints: { debugAdapter: 'src/debugAdapter/start.ts' }, external: ['./debugAdapterMain.js'] },
  { ...node, entryPoints: { debugAdapterMain: 'src/debugAdapter/main.ts' }, external: runtimeExternals },
  // Sandboxed tools run in child processes of the runtime: isolates in isolate workers, the process and OS tiers in a tool process.
  { ...node, entryPoints: { isolateWorker: 'src/runtime/sandbox/isolateWorker.ts' }, external: runtimeExternals },
  { ...node, entryPoints: { toolProcess: 'src/runtime/sandbox/toolProcess.ts' }, external: runtimeExternals },
  { ...node, entryPoints: { index: 'src/runtime/index.ts' }, packages: 'external' },
  { ...browser, entryPoints: { run: 'webview/run/main.ts' } },
  { ...browser, entryPoints: { timeline: 'webview/timeline/main.ts' } },
  { ...browser, entryPoints: { meter: 'webview/meter/main.ts' } },
  { ...browser, entryPoints: { compare: 'webview/compare/main.ts' } },
].filter((bundle) => !only || Object.keys(bundle.entryPoints).some((name) => only.includes(name)));

// Chunks are named by their content's hash: the last build's would be left beside this one's.
if (bundles.includes(cli)) rmSync(cliChunks, { recursive: true, force: true });
const contexts = await Promise.all(bundles.map((options) => esbuild.context(options)));
if (watch) {
  await Promise.all(contexts.map((context) => context.watch()));
} else {
  // esbuild has already printed what failed; a stack trace of the build script would add nothing.
  const results = await Promise.allSettled(contexts.map((context) => context.rebuild()));
  await Promise.all(contexts.map((context) => context.dispose()));
  if (results.some((result) => result.status === 'rejected')) process.exitCode = 1;
}
