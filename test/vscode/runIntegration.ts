import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import { Cleanup, createProfile, launchBrowser, startCodeServer, withTimeout } from './codeServer';
import {
  clearStageResult,
  prepareWorkspace,
  readStageResult,
  repoRootFrom,
  requireBuilt,
  resultsDirOf,
  runStageAsMain,
  writeStageResult,
} from './testWorkspace';

const STAGE = 'integration';
const TIMEOUT_MS = 5 * 60_000;
/** Workbench log lines that say nothing about the tests (the extension gallery is off on purpose). */
const WORKBENCH_NOISE = [/^Ignoring fetching additional builtin extensions from gallery as it is disabled\.$/];

/**
 * Runs out/test/integration inside a real VS Code (code-server with the smoke-test driver, driven
 * by Chromium) and resolves with the tests' exit code. Builds nothing: run `npm run build` and
 * `npx tsc -p .` first.
 */
export async function runIntegration(): Promise<number> {
  const started = Date.now();
  const repoRoot = repoRootFrom(__dirname);
  const resultsDir = resultsDirOf(repoRoot);
  const testsEntry = join(repoRoot, 'out', 'test', 'integration', 'index');
  requireBuilt(repoRoot, [join('dist', 'extension.js'), join('dist', 'daemon.js'), join('out', 'test', 'integration', 'index.js')]);
  mkdirSync(resultsDir, { recursive: true });
  clearStageResult(resultsDir, STAGE);
  const logFile = join(resultsDir, `${STAGE}-code-server.log`);
  rmSync(logFile, { force: true });

  const cleanup = new Cleanup();
  let code: number;
  try {
    const workspace = prepareWorkspace(repoRoot);
    cleanup.defer(`remove ${workspace.path}`, () => workspace.dispose());
    const profile = createProfile(cleanup);
    const server = await startCodeServer(profile, { smokeTestDriver: true, logFile });
    cleanup.defer('stop code-server', () => server.stop());
    const { page } = await launchBrowser(cleanup);

    let reportExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => {
      reportExit = resolve;
    });
    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      const line = format(...args);
      if (WORKBENCH_NOISE.some((noise) => noise.test(line))) return;
      process.stdout.write(`${type === 'info' ? '' : `[${type}] `}${line}\n`);
    });
    await page.exposeFunction('codeAutomationExit', (exitCode: number) => reportExit(exitCode));

    const remote = (path: string) => `vscode-remote://${server.authority}${path}`;
    const payload = [
      ['extensionDevelopmentPath', remote(repoRoot)],
      ['extensionTestsPath', remote(testsEntry)],
      ['skipWelcome', 'true'],
    ];
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace.path)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
    try {
      code = await withTimeout(
        exited,
        TIMEOUT_MS,
        `The integration tests did not finish within ${TIMEOUT_MS / 60_000} minutes; code-server's log is in ${logFile}.`,
      );
    } catch (error) {
      await page.screenshot({ path: join(resultsDir, `${STAGE}-timeout.png`) }).catch(() => undefined);
      throw error;
    }
  } finally {
    await cleanup.run();
  }

  const result = readStageResult(resultsDir, STAGE);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (!result) {
    // The extension host ended before mocha could count (a test file failed to load, the host crashed).
    writeStageResult(resultsDir, { stage: STAGE, passed: 0, failed: 1 });
    process.stdout.write(`${STAGE}: the tests ended with exit code ${code} before reporting counts (${seconds} s)\n`);
    return code === 0 ? 1 : code;
  }
  process.stdout.write(`${STAGE}: ${result.passed} passed, ${result.failed} failed, exit code ${code} (${seconds} s)\n`);
  return code;
}

if (require.main === module) runStageAsMain(STAGE, runIntegration);
