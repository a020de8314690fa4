import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, runNode, testEnv } from '../support/processes';

const VSCE_CLI = join(REPO_ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
const PACKING_TIMEOUT_MS = 120_000;

interface Manifest {
  readonly main: string;
  readonly types: string;
  readonly bin: Readonly<Record<string, string>>;
  readonly exports: Readonly<Record<string, string | Readonly<Record<string, string>>>>;
  readonly vsce: { readonly readmePath: string };
  readonly contributes: { readonly walkthroughs: readonly { readonly steps: readonly { readonly media: { readonly markdown: string } }[] }[] };
}

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Manifest;

/** A path of package.json (`./dist/index.js`) as npm and vsce list it (`dist/index.js`). */
function packed(path: string): string {
  return path.replace(/^\.\//, '');
}

/** The wanted files that are not in `files`. */
function missing(files: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((file) => !files.includes(file));
}

/** The files that `allowed` does not match. */
function strays(files: readonly string[], allowed: RegExp): string[] {
  return files.filter((file) => !allowed.test(file));
}

describe('the npm package keel-agents, as `npm pack` makes it from the built dist/', function () {
  this.timeout(PACKING_TIMEOUT_MS);
  let files: string[] = [];

  before(async () => {
    // npm on PATH, as a person packs the package.
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: REPO_ROOT,
      env: testEnv(),
      timeout: PACKING_TIMEOUT_MS,
    });
    const [tarball] = JSON.parse(stdout) as { files: { path: string }[] }[];
    files = tarball?.files.map((file) => file.path) ?? [];
  });

  it('holds the library, the keel command, the runtime process, the type declarations and the JSON schemas', () => {
    const wanted = [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'LICENSE',
      'bin/keel.js',
      'bin/checkNode.js',
      'dist/index.js',
      'dist/cli.mjs',
      // The editor runs a workspace's own runtime process and debug adapter (src/extension/client/runtimeLocator.ts).
      'dist/daemon.js',
      'dist/debugAdapter.js',
      'dist/debugAdapterMain.js',
      // Sandboxed tools run in these, started from next to the runtime's bundle (src/runtime/sandbox).
      'dist/isolateWorker.js',
      'dist/toolProcess.js',
      'schemas/golden.schema.json',
      'schemas/judge-control.schema.json',
    ];
    assert.deepEqual(missing(files, wanted), []);
  });

  it('holds every file its package.json names: exports, types and bin', () => {
    const named = [
      ...Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target))),
      manifest.types,
      ...Object.values(manifest.bin),
    ].map(packed);
    assert.deepEqual(missing(files, named), []);
  });

  it('holds no tests, sources, editor bundle, webviews, media or source maps', () => {
    // npm always packs package.json's "main", the editor bundle; it finds no file for
    // "./dist/extension.js" (its leading "./"), which is what keeps the bundle out.
    assert.ok(!files.includes(packed(manifest.main)), `${manifest.main} is in the tarball`);
    const allowed = /^(package\.json|README\.md|CHANGELOG\.md|LICENSE|bin\/[^/]+\.js|dist\/(index|daemon|debugAdapter|debugAdapterMain|isolateWorker|toolProcess)\.js|dist\/cli\.mjs|dist\/cli-chunks\/[^/]+\.mjs|dist\/types\/(runtime\/.+|shared\/[^/]+)\.d\.ts|schemas\/[^/]+\.json)$/;
    assert.deepEqual(strays(files, allowed), []);
  });
});

describe('the VS Code extension, as `vsce package` makes it', function () {
  this.timeout(PACKING_TIMEOUT_MS);
  let files: string[] = [];

  before(async () => {
    // `vsce ls` does not read package.json's "vsce" options, so it is given the README's path.
    const result = await runNode(VSCE_CLI, ['ls', '--readme-path', manifest.vsce.readmePath], { timeoutMs: PACKING_TIMEOUT_MS });
    assert.equal(result.code, 0, result.stderr);
    files = result.stdout.split('\n').filter((line) => line !== '');
  });

  it('holds the bundles, the icon, its own README and changelog, the walkthrough pages and the native modules for linux-x64', () => {
    const wanted = [
      ...manifest.contributes.walkthroughs.flatMap((walkthrough) => walkthrough.steps.map((step) => step.media.markdown)),
      packed(manifest.main),
      'dist/daemon.js',
      'dist/isolateWorker.js',
      'dist/toolProcess.js',
      'dist/cli.mjs',
      'dist/run.js',
      'media/icon.png',
      manifest.vsce.readmePath,
      'CHANGELOG.md',
      'schemas/golden.schema.json',
      'node_modules/better-sqlite3/prebuilds/linux-x64.node',
      'node_modules/isolated-vm/prebuilds/linux-x64/isolated-vm.abi137.glibc.node',
      'node_modules/@esbuild/linux-x64/bin/esbuild',
    ];
    assert.deepEqual(missing(files, wanted), []);
  });

  it('holds nothing else of the repository: no tests, sources, docs, developer README or source maps', () => {
    const allowed =
      /^(package\.json|LICENSE|CHANGELOG\.md|vsix\/README\.md|bin\/[^/]+\.js|dist\/[^/]+\.js|dist\/cli\.mjs|dist\/cli-chunks\/[^/]+\.mjs|media\/[^/]+\.(png|svg|css)|media\/walkthrough\/[^/]+\.md|syntaxes\/keel-transcript\.(tmLanguage|language-configuration)\.json|schemas\/[^/]+\.json|node_modules\/(better-sqlite3|esbuild|@esbuild\/linux-x64|isolated-vm|node-gyp-build)\/.+)$/;
    assert.deepEqual(strays(files, allowed), []);
  });
});
