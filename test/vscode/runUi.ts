import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../../src/runtime/errors';
import { uiTests } from '../ui/runAgent.ui';
import { Cleanup, createProfile, installExtension, launchBrowser, packageExtension, runProcess, startCodeServer } from './codeServer';
import {
  EXAMPLE_INPUT,
  EXAMPLE_RESULT,
  clearStageResult,
  prepareWorkspace,
  repoRootFrom,
  requireBuilt,
  resultsDirOf,
  runStageAsMain,
  writeStageResult,
  type TestWorkspace,
} from './testWorkspace';

const STAGE = 'ui';

/**
 * Packages the extension with vsce, installs the .vsix into a fresh code-server (without the
 * smoke-test driver, so toasts show) and drives it with Chromium as a person would. `vsce package`
 * bundles again (package.json's vscode:prepublish); the tests themselves need `npm run build` and
 * `tsc -p .` first. Resolves with 0 when every UI test passed.
 */
export async function runUi(): Promise<number> {
  const started = Date.now();
  const repoRoot = repoRootFrom(__dirname);
  const resultsDir = resultsDirOf(repoRoot);
  requireBuilt(repoRoot, [join('dist', 'extension.js'), join('dist', 'daemon.js'), join('dist', 'cli.mjs')]);
  mkdirSync(resultsDir, { recursive: true });
  clearStageResult(resultsDir, STAGE);
  for (const test of uiTests) rmSync(join(resultsDir, `${test.failureScreenshot}.png`), { force: true });
  for (const screenshot of ['ui-run-agent', 'ui-approval', 'ui-approval-done', 'ui-meter', 'ui-meter-done', 'ui-testing', 'ui-create-agent', 'ui-trace-subagent', 'ui-runs-tree', 'ui-run-step', 'ui-compare']) rmSync(join(resultsDir, `${screenshot}.png`), { force: true });
  const logFile = join(resultsDir, `${STAGE}-code-server.log`);
  rmSync(logFile, { force: true });

  const cleanup = new Cleanup();
  let passed = 0;
  let failed = 0;
  try {
    const workspace = prepareWorkspace(repoRoot);
    cleanup.defer(`remove ${workspace.path}`, () => workspace.dispose());
    const profile = createProfile(cleanup);
    const vsix = await packageExtension(repoRoot, join(profile.root, 'keel-agents.vsix'));
    const installedExtension = await installExtension(profile, vsix);
    process.stdout.write(`installed ${vsix} into ${installedExtension}\n`);
    await checkInstalledCli(installedExtension, workspace, profile.root);

    const server = await startCodeServer(profile, { logFile });
    cleanup.defer('stop code-server', () => server.stop());
    const { page } = await launchBrowser(cleanup);
    page.setDefaultTimeout(60_000);

    // KEEL_TEST_GREP runs only the UI tests whose name matches it (a regular expression), as in the integration stage.
    const grep = process.env['KEEL_TEST_GREP'];
    for (const test of uiTests.filter((candidate) => grep === undefined || new RegExp(grep).test(candidate.name))) {
      const testStarted = Date.now();
      try {
        await test.run({ page, serverUrl: server.url, workspace, installedExtension, resultsDir });
        passed += 1;
        process.stdout.write(`  ✔ ${test.name} (${Date.now() - testStarted} ms)\n`);
      } catch (error) {
        failed += 1;
        const screenshot = join(resultsDir, `${test.failureScreenshot}.png`);
        await page.screenshot({ path: screenshot }).catch(() => undefined);
        process.stdout.write(`  ✘ ${test.name}\n    ${describeError(error).replaceAll('\n', '\n    ')}\n    screenshot: ${screenshot}\n`);
      }
    }
  } finally {
    await cleanup.run();
  }

  writeStageResult(resultsDir, { stage: STAGE, passed, failed });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${STAGE}: ${passed} passed, ${failed} failed (${seconds} s)\n`);
  return failed > 0 ? 1 : 0;
}

/**
 * The installed copy runs the example on its own: its bundles find better-sqlite3 and esbuild in
 * the extension's folder, since no folder above it has a node_modules with them.
 */
async function checkInstalledCli(installedExtension: string, workspace: TestWorkspace, scratch: string): Promise<void> {
  const env = { ...process.env };
  delete env['NODE_PATH'];
  const args = [join(installedExtension, 'bin', 'keel.js'), 'run', workspace.agentFile, '--input', EXAMPLE_INPUT];
  const result = await runProcess('node', [...args, '--db', join(scratch, 'installed-cli.db')], { cwd: scratch, env, timeoutMs: 60_000 });
  if (result.code !== 0 || !result.output.includes(EXAMPLE_RESULT)) {
    throw new Error(`The installed extension's CLI could not run the example (exit code ${result.code}):\n${result.output.trim()}`);
  }
}

if (require.main === module) runStageAsMain(STAGE, runUi);
