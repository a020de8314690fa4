import * as vscode from 'vscode';
import { GoldenTests, SHOW_TRACE, type GoldenProfile, type GoldenTestsDeps } from './goldenTests';

/** Registers the Test Explorer's golden tests, the command that opens a case's last run, and the internal test commands. */
export function registerGoldenTests(context: vscode.ExtensionContext, deps: GoldenTestsDeps): void {
  const tests = new GoldenTests(deps);
  context.subscriptions.push(
    tests,
    vscode.commands.registerCommand('keel.showGoldenTrace', (item?: vscode.TestItem) => {
      const runId = item ? tests.lastRunOf(item) : null;
      if (runId) return vscode.commands.executeCommand(SHOW_TRACE, runId);
      void vscode.window.showInformationMessage('Run this case first: its trace opens once it has run.');
      return undefined;
    }),
    // For integration tests, which must not import the extension's modules.
    // Without `rediscover`, later calls show what the file watcher made of changes.
    vscode.commands.registerCommand('keel._test.goldenTests', async (rediscover = false) => {
      await tests.discoverAll(rediscover === true);
      return tests.snapshot();
    }),
    vscode.commands.registerCommand('keel._test.runGolden', (ids: readonly string[] | undefined, profile: GoldenProfile = 'cassette') => tests.runForTest(ids, profile)),
  );
}
