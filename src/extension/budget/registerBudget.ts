import * as vscode from 'vscode';
import type { RuntimeClient } from '../client/runtimeClient';
import type { EditorSettings } from '../client/settings';
import { showRunCommand } from '../ui/pickRun';
import { budgetMeter } from './budgetMeter';
import { SpendStatusBar } from './spendStatusBar';

export interface BudgetDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
  readonly editor: EditorSettings;
}

/**
 * Cost control in the editor: the budget meter (from the Runs view, the palette and the status
 * bar), the status bar item with the spend of the run going, and the cost settings, which a
 * running runtime process takes as they change.
 */
export function registerBudget(context: vscode.ExtensionContext, extensionUri: vscode.Uri, deps: BudgetDeps): void {
  const { client, log, editor } = deps;
  const meter = budgetMeter(extensionUri, client);
  const status = new SpendStatusBar(client);
  const show = showRunCommand(client, 'Keel: Show Budget Meter', (runId) => meter.show(runId));
  context.subscriptions.push(
    meter,
    status,
    vscode.commands.registerCommand('keel.showBudget', show),
    vscode.commands.registerCommand('keel.chooseBudget', () => show()),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (!change.affectsConfiguration('keel.prices') && !change.affectsConfiguration('keel.budget')) return;
      if (!client.connected) return;
      client.request('configure', { cost: editor.cost() }).then(
        () => log.info('Keel cost settings changed: runs started from now on use them.'),
        (error: unknown) => log.error(`Could not apply the cost settings: ${error instanceof Error ? error.message : String(error)}`),
      );
    }),
    // For integration tests: what the budget meter last drew, and the status bar item.
    vscode.commands.registerCommand('keel._test.meterView', () => meter.views()[0]?.snapshot() ?? null),
    vscode.commands.registerCommand('keel._test.spendStatus', () => status.snapshot()),
  );
}
