import * as vscode from 'vscode';
import { registerAlerts } from './alerts/registerAlerts';
import { PendingApprovals } from './approvals/pendingApprovals';
import { registerApprovals } from './approvals/registerApprovals';
import { registerBudget } from './budget/registerBudget';
import { watchDatabase } from './client/databaseChanges';
import { registerClient } from './client/registerClient';
import { RuntimeClient } from './client/runtimeClient';
import { clientOptions, editorSettings } from './client/settings';
import { registerDebugger } from './debug/registerDebugger';
import { registerGoldenTests } from './golden/registerGoldenTests';
import { registerMemory } from './memory/registerMemory';
import { registerCreateAgent } from './project/createAgent';
import type { FollowRunDeps } from './ui/followRun';
import { registerRuns } from './runs/registerRuns';
import { runPanels } from './runs/runPanel';
import { registerTraces } from './trace/registerTraces';
import { tracePanels } from './trace/tracePanel';

/** The composition root: build the services, then register each feature. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Keel', { log: true });
  const editor = editorSettings(context);
  const client = new RuntimeClient(clientOptions(editor, log));
  const approvals = new PendingApprovals(client, log);
  const runs = runPanels(context.extensionUri, client);
  const traces = tracePanels(context.extensionUri, client);
  const databaseChanged = watchDatabase(context);
  const follow: FollowRunDeps = { client, log, showRun: (runId) => runs.show(runId), showTrace: (runId) => traces.show(runId) };
  context.subscriptions.push(log, client, approvals, runs, traces, vscode.commands.registerCommand('keel.showLog', () => log.show()));

  registerClient(context, { client, log, editor });
  registerRuns(context, { ...follow, approvals, panels: runs, databaseChanged });
  registerApprovals(context, follow, approvals);
  registerTraces(context, client, traces);
  registerBudget(context, context.extensionUri, { client });
  registerMemory(context, { ...follow, databaseChanged });
  registerGoldenTests(context, { client, log, editor });
  registerDebugger(context, { ...follow, editor });
  registerAlerts(context, { ...follow, editor, databaseChanged });
  registerCreateAgent(context, { client, log });
}
