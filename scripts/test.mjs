// Runs every check a change must pass, in order, then checks that they left `git status` as it was;
// it ends with one line: `N passed, N failed`.
// Usage: node scripts/test.mjs [stage...]   (stages: build lint unit golden userpath conformance fault integration ui; default all)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const results = 'test-results';
const stages = [
  { name: 'build', command: 'node scripts/build.mjs && tsc -p tsconfig.types.json && tsc -p . && tsc -p tsconfig.webview.json', essential: true },
  { name: 'lint', command: 'eslint .' },
  { name: 'unit', command: 'mocha --reporter out/test/support/countingReporter.js', counted: true },
  // The example agents' golden cases, replayed from their cassettes; each case counts in the summary.
  { name: 'golden', command: "node --no-node-snapshot bin/keel.js test 'examples/**/*.golden.yaml'", counted: true },
  // The user's path: npm pack, then docs/getting-started.md's commands in a new folder outside the
  // repository with a fresh HOME (npm init, the tarball installed, keel init, keel run, keel test, tsc);
  // then vsce package, and that folder opened in code-server with the VSIX installed (no problems on
  // the agent file, Keel: Run Agent… completes, the Testing view passes the golden case).
  { name: 'userpath', command: 'node out/test/userpath/runUserPath.js', needsVsCode: true },
  // The engine conformance suite: the same scenarios on the local engine (SQLite, PGlite, a real
  // PostgreSQL) and on Restate (a real restate-server from npm), each scenario counting once per engine.
  {
    name: 'conformance',
    command: "mocha --no-config --node-option no-node-snapshot --spec 'out/test/conformance/**/*.test.js' --timeout 120000 --reporter out/test/support/countingReporter.js",
    counted: true,
  },
  {
    name: 'fault',
    command: "mocha --no-config --spec 'out/test/fault/**/*.test.js' --timeout 900000 --reporter out/test/support/countingReporter.js",
    counted: true,
  },
  { name: 'integration', command: 'node out/test/vscode/runIntegration.js', counted: true, needsVsCode: true },
  { name: 'ui', command: 'node out/test/vscode/runUi.js', counted: true, needsVsCode: true },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !stages.some((stage) => stage.name === name));
if (unknown.length > 0) {
  console.error(`Unknown stage ${unknown.join(', ')}; the stages are ${stages.map((stage) => stage.name).join(', ')}.`);
  process.exit(2);
}

/**
 * The files `git status` lists as changed or untracked (every untracked file, not only its folder);
 * undefined outside a git checkout. Tests must leave the clone as they found it.
 */
function changedFiles() {
  const { status, stdout } = spawnSync('git', ['status', '--porcelain=v1', '-z', '--untracked-files=all'], { encoding: 'utf8' });
  if (status !== 0) return undefined;
  const files = new Set();
  // Entries are "XY path", NUL-separated; a rename or copy is followed by its source path.
  const entries = stdout.split('\0');
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index] ?? '';
    if (entry.length < 4) continue;
    files.add(entry.slice(3));
    if (entry[0] === 'R' || entry[0] === 'C') index++;
  }
  return files;
}

mkdirSync(results, { recursive: true });
// A developer's own uncommitted work is not the tests' doing: only files clean now count.
const changedBefore = changedFiles();
let passed = 0;
let failed = 0;
const failedStages = [];
const env = { ...process.env, PATH: `${join(process.cwd(), 'node_modules', '.bin')}:${process.env.PATH}` };

/**
 * The VS Code stages need code-server on Node 24 and Chromium. Unless KEEL_CODE_SERVER says where
 * they are, .ci/provision.sh installs what is missing (into ~/.cache/keel) and says where it put it.
 */
function provisionVsCode() {
  if (env.KEEL_CODE_SERVER) return true;
  console.log('\n=== provisioning a real VS Code for the tests (.ci/provision.sh)');
  const { status, stdout } = spawnSync('.ci/provision.sh', { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (status !== 0) return false;
  for (const [, name, value] of stdout.matchAll(/^export (\w+)="(.*)"$/gm)) {
    env[name] = value.replace(/\$PATH$/, env.PATH ?? '');
  }
  return true;
}

for (const stage of stages) {
  if (wanted.length > 0 && !wanted.includes(stage.name)) continue;
  if (stage.needsVsCode && !provisionVsCode()) {
    console.log(`=== ${stage.name} FAILED: .ci/provision.sh could not provide code-server and Chromium (see above)`);
    failed += 1;
    failedStages.push(stage.name);
    continue;
  }
  const counts = join(results, `${stage.name}.json`);
  rmSync(counts, { force: true });
  console.log(`\n=== ${stage.name}: ${stage.command}`);
  const started = Date.now();
  const { status } = spawnSync(stage.command, { shell: true, stdio: 'inherit', env: { ...env, KEEL_TEST_COUNTS: counts } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (stage.counted && existsSync(counts)) {
    const tally = JSON.parse(readFileSync(counts, 'utf8'));
    passed += tally.passed;
    failed += tally.failed;
    if (status !== 0 && tally.failed === 0) failed += 1;
  } else if (status !== 0) {
    failed += 1;
  }
  console.log(`=== ${stage.name} ${status === 0 ? 'passed' : 'FAILED'} in ${seconds} s`);
  if (status !== 0) {
    failedStages.push(stage.name);
    if (stage.essential) break;
  }
}

const changedAfter = changedFiles();
if (changedBefore && changedAfter) {
  const changedByTests = [...changedAfter].filter((file) => !changedBefore.has(file));
  if (changedByTests.length > 0) {
    console.log(`\n=== git status FAILED: the tests changed files that were clean before they ran (write under os.tmpdir() or test-results/):`);
    for (const file of changedByTests) console.log(`  ${file}`);
    failed += 1;
    failedStages.push('git status');
  }
}

if (failedStages.length > 0) console.log(`\nFailed: ${failedStages.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failedStages.length > 0 ? 1 : 0;
