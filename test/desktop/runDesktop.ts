import { join } from 'node:path';
import { TestRunFailedError, runTests } from '@vscode/test-electron';
import { clearStageResult, prepareWorkspace, readStageResult, repoRootFrom, requireBuilt, resultsDirOf } from '../vscode/testWorkspace';

/**
 * The integration tests in desktop VS Code, for contributors with a display and the internet:
 * @vscode/test-electron downloads VS Code (KEEL_VSCODE_VERSION, default stable) into
 * .vscode-test/ and runs out/test/integration there. CI uses test/vscode/runIntegration.ts
 * instead, because downloading VS Code is not possible there. Builds nothing: run
 * `npm run build && npx tsc -p .` first.
 */
export async function runDesktop(): Promise<number> {
  const repoRoot = repoRootFrom(__dirname);
  requireBuilt(repoRoot, [join('dist', 'extension.js'), join('dist', 'daemon.js'), join('out', 'test', 'integration', 'index.js')]);
  const resultsDir = resultsDirOf(repoRoot);
  clearStageResult(resultsDir, 'integration');
  const workspace = prepareWorkspace(repoRoot);
  try {
    const code = await runTests({
      version: process.env['KEEL_VSCODE_VERSION'] ?? 'stable',
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(repoRoot, 'out', 'test', 'integration', 'index'),
      // test-electron adds --skip-welcome, --disable-workspace-trust and a profile under .vscode-test/.
      launchArgs: [workspace.path, '--disable-extensions'],
    });
    report(resultsDir);
    return code;
  } catch (error) {
    if (error instanceof TestRunFailedError) {
      report(resultsDir);
      return typeof error.code === 'number' && error.code !== 0 ? error.code : 1;
    }
    throw error;
  } finally {
    workspace.dispose();
  }
}

function report(resultsDir: string): void {
  const result = readStageResult(resultsDir, 'integration');
  process.stdout.write(
    result ? `integration (desktop): ${result.passed} passed, ${result.failed} failed\n` : 'integration (desktop): the tests reported no counts\n',
  );
}

if (require.main === module) {
  runDesktop().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `desktop integration tests: ${error instanceof Error ? error.message : String(error)}\n` +
          '(this runner downloads VS Code; without the internet, run node out/test/vscode/runIntegration.js)\n',
      );
      process.exitCode = 1;
    },
  );
}
