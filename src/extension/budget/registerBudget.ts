import * as vscode from 'vscode';
import type { RuntimeClient } from '../client/runtimeClient';
import { showRunCommand } from '../ui/pickRun';
import { budgetMeter } from './budgetMeter';
import { SpendStatusBar } from './spendStatusBar';

export interface BudgetDeps {
  readonly client: RuntimeClient;
}

/**
 * Cost control in the editor: the budget meter (from the Runs view, the palette and the status
 * bar), and the status bar item with the spend of the run going.
 */
export function registerBudget(context: vscode.ExtensionContext, extensionUri: vscode.Uri, deps: BudgetDeps): void {
  const { client } = deps;
  const meter = budgetMeter(extensionUri, client);
  const status = new SpendStatusBar(client);
  const show = showRunCommand(client, 'Keel: Show Budget Meter', (runId) => meter.show(runId));
  context.subscriptions.push(
    meter,
    status,
    vscode.commands.registerCommand('keel.showBudget', show),
    vscode.commands.registerCommand('keel.chooseBudget', () => show()),
    // For integration tests: what the budget meter last drew, and the status bar item.
    vscode.commands.registerCommand('keel._test.meterView', () => meter.views()[0]?.snapshot() ?? null),
    vscode.commands.registerCommand('keel._test.spendStatus', () => status.snapshot()),
  );
}
