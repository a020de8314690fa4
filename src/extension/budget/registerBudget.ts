import * as vscode from 'vscode';
import type { BudgetMeter } from './budgetMeter';
import { pickRecentRun } from '../runs/pickRun';
import type { RuntimeClient } from '../client/runtimeClient';
import type { RunRow } from '../runs/runsTree';
import { costSettingsFrom } from './spendText';
import { SpendStatusBar } from './spendStatusBar';

export interface BudgetDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
  readonly meter: BudgetMeter;
  readonly runIdOf: (target: string | RunRow) => string;
}

/** The editor's cost settings, as the runtime process takes them. */
export function costSettings(workspaceRoot: string | undefined): ReturnType<typeof costSettingsFrom> {
  const settings = vscode.workspace.getConfiguration('keel');
  return costSettingsFrom(settings.get<unknown>('prices'), settings.get<unknown>('budget.dailyUsd'), workspaceRoot);
}

/**
 * Cost control in the editor: the budget meter (from the Runs view, the palette and the status
 * bar), the status bar item with the spend of the run going, and the cost settings, which a
 * running runtime process takes as they change.
 */
export function registerBudget(context: vscode.ExtensionContext, deps: BudgetDeps, workspaceRoot: string | undefined): void {
  const { client, log, meter } = deps;
  const status = new SpendStatusBar(client);
  const choose = async () => {
    try {
      const run = await pickRecentRun(client, 'Keel: Show Budget Meter');
      if (run) meter.show(run.id);
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    }
  };
  context.subscriptions.push(
    status,
    vscode.commands.registerCommand('keel.showBudget', (target?: string | RunRow) =>
      target === undefined ? choose() : meter.show(deps.runIdOf(target)),
    ),
    vscode.commands.registerCommand('keel.chooseBudget', choose),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (!change.affectsConfiguration('keel.prices') && !change.affectsConfiguration('keel.budget')) return;
      if (!client.connected) return;
      client.request('configure', { cost: costSettings(workspaceRoot) }).then(
        () => log.info('Keel cost settings changed: runs started from now on use them.'),
        (error: unknown) => log.error(`Could not apply the cost settings: ${error instanceof Error ? error.message : String(error)}`),
      );
    }),
    // For integration tests: what the budget meter last drew, and the status bar item.
    vscode.commands.registerCommand('keel._test.meterView', () => meter.snapshot()),
    vscode.commands.registerCommand('keel._test.spendStatus', () => status.snapshot()),
  );
}
