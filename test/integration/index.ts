import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';
import * as vscode from 'vscode';
import { readTestContext, writeStageResult } from '../vscode/testWorkspace';

/**
 * Entry point the extension host calls (extensionTestsPath): runs every *.test.js next to this
 * file with mocha, inside VS Code (only the tests matching KEEL_TEST_GREP when it is set), writes
 * test-results/integration.json, and rejects if any failed (VS Code then exits the tests with a
 * non-zero code).
 */
export async function run(): Promise<void> {
  const workspace = vscode.workspace.workspaceFolders?.[0];
  if (!workspace) throw new Error('The integration tests need a workspace folder; open the one a test runner prepared.');
  const context = readTestContext(workspace.uri.fsPath);

  // KEEL_TEST_GREP runs only the tests whose full title matches it (a regular expression).
  const mocha = new Mocha({ ui: 'bdd', color: false, reporter: 'spec', timeout: 60_000, grep: process.env['KEEL_TEST_GREP'] });
  for (const file of testFiles(__dirname)) mocha.addFile(file);

  const { passed, failed } = await new Promise<{ passed: number; failed: number }>((resolve) => {
    const runner = mocha.run(() => resolve({ passed: runner.stats?.passes ?? 0, failed: runner.stats?.failures ?? 0 }));
  });
  writeStageResult(context.resultsDir, { stage: 'integration', passed, failed });
  if (failed > 0) throw new Error(`${failed} integration test${failed === 1 ? '' : 's'} failed.`);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.js'))
    .sort()
    .map((name) => join(dir, name));
}
