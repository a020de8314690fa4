import * as vscode from 'vscode';
import { isPostgresUrl } from '../shared/storeLocation';
import { AgentCodeLensProvider } from './runs/agentCodeLens';
import { BudgetMeter } from './budget/budgetMeter';
import type { FollowRunDeps } from './runs/followRun';
import { registerGoldenTests } from './golden/goldenTests';
import { PendingApprovals } from './approvals/pendingApprovals';
import { pickRecentRun } from './runs/pickRun';
import { offerToResumeInterrupted, resumeRun } from './runs/resumeRun';
import { registerApprovals } from './approvals/registerApprovals';
import { registerDebugger } from './debug/registerDebugger';
import { costSettings, registerBudget } from './budget/registerBudget';
import { registerMemory } from './memory/registerMemory';
import { watchDatabase } from './client/databaseChanges';
import { RunPanels } from './runs/runPanel';
import { runAgent } from './runs/runAgent';
import { RuntimeClient } from './client/runtimeClient';
import { RunsTree, type RunRow } from './runs/runsTree';
import { TracePanels } from './trace/tracePanel';

/** The composition root: build the services, then register each feature. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Keel', { log: true });
  const settings = () => vscode.workspace.getConfiguration('keel');
  const workspaceRoot = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const nodePath = () => settings().get<string>('nodePath')?.trim() || 'node';
  const client = new RuntimeClient({
    extensionPath: context.extensionPath,
    workspaceRoot,
    log,
    nodePath,
    databasePath: () => {
      const configured = settings().get<string>('databasePath')?.trim();
      // A PostgreSQL connection string goes to the runtime process as it is.
      if (configured && isPostgresUrl(configured)) return configured;
      if (!configured || !workspaceRoot) return undefined;
      return vscode.Uri.joinPath(vscode.Uri.file(workspaceRoot), configured).fsPath;
    },
    cost: () => costSettings(workspaceRoot),
    sandboxDefault: () => settings().get<string>('sandbox.default'),
  });
  const approvals = new PendingApprovals(client, log);
  const tree = new RunsTree(client, approvals);
  const panels = new RunPanels(context.extensionUri, client);
  const traces = new TracePanels(context.extensionUri, client);
  const follow: FollowRunDeps = { client, log, showRun: (runId) => panels.show(runId), showTrace: (runId) => traces.show(runId) };
  context.subscriptions.push(log, client, approvals, tree, panels, traces);

  const databaseChanged = watchDatabase(context);
  registerRunsView(context, tree, client, approvals, databaseChanged);
  registerApprovals(context, follow, approvals);
  registerResume(context, follow, tree);
  registerTraces(context, traces, client);
  const meter = new BudgetMeter(context.extensionUri, client);
  context.subscriptions.push(meter);
  registerBudget(context, { client, log, meter, runIdOf }, workspaceRoot);
  registerMemory(context, { ...follow, runIdOf, databaseChanged });
  registerGoldenTests(context, { client, log, settings, workspaceRoot });
  registerDebugger(context, {
    ...follow,
    runIdOf,
    nodePath,
    workspaceRoot,
    extensionPath: context.extensionPath,
  });
  context.subscriptions.push(
    vscode.commands.registerCommand('keel.runAgent', (file?: vscode.Uri, input?: string) =>
      runAgent({ ...follow, memory: context.workspaceState }, file, input),
    ),
    vscode.commands.registerCommand('keel.showRun', (target: string | RunRow) => panels.show(runIdOf(target))),
    vscode.commands.registerCommand('keel.showLog', () => log.show()),
    vscode.languages.registerCodeLensProvider({ pattern: '**/*.agent.ts' }, new AgentCodeLensProvider()),
    // For integration tests, which must not import the extension's modules: what the Runs view shows.
    vscode.commands.registerCommand('keel._test.runsView', () => tree.snapshot()),
    vscode.commands.registerCommand('keel._test.runsViewThreads', () => tree.threadsSnapshot()),
  );
}

/** The Trace timeline: of a given run (Runs view, notifications), or of one picked from the recent runs. */
function registerTraces(context: vscode.ExtensionContext, traces: TracePanels, client: RuntimeClient): void {
  const choose = async () => {
    try {
      const run = await pickRecentRun(client, 'Keel: Show Trace');
      if (run) traces.show(run.id);
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    }
  };
  context.subscriptions.push(
    vscode.commands.registerCommand('keel.showTrace', (target?: string | RunRow) =>
      target === undefined ? choose() : traces.show(runIdOf(target)),
    ),
    vscode.commands.registerCommand('keel.chooseTrace', choose),
    // For integration tests: the open Trace timelines and what each webview said it shows.
    vscode.commands.registerCommand('keel._test.traceViews', () => traces.snapshot()),
  );
}

/** Resuming interrupted runs: the command, and the offer when a runtime process finds some as it starts. */
function registerResume(context: vscode.ExtensionContext, follow: FollowRunDeps, tree: RunsTree): void {
  const { client } = follow;
  context.subscriptions.push(
    vscode.commands.registerCommand('keel.resumeRun', (target?: string | RunRow) =>
      resumeRun(follow, target === undefined ? undefined : runIdOf(target)),
    ),
    offerToResumeInterrupted({ ...follow, revealRuns: () => void vscode.commands.executeCommand('keel.runs.focus') }),
    // Runs a crashed runtime process left `running` read as interrupted now.
    client.onDidStart(({ interrupted }) => {
      if (interrupted.length > 0) void tree.refresh().catch(() => undefined);
    }),
  );
  // Runs interrupted while no window was open are offered as soon as the workspace opens.
  if (client.hasDatabase()) void client.info().catch(() => undefined);
}

function runIdOf(target: string | RunRow): string {
  if (typeof target === 'string') return target;
  switch (target.kind) {
    case 'run':
      return target.runId;
    case 'step':
      return target.step.runId;
    case 'approval':
      return target.approval.runId;
  }
}

function registerRunsView(
  context: vscode.ExtensionContext,
  tree: RunsTree,
  client: RuntimeClient,
  approvals: PendingApprovals,
  databaseChanged: vscode.Event<void>,
): void {
  const refresh = () =>
    Promise.all([
      tree.refresh().catch((error: unknown) => {
        void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
      }),
      approvals.refresh(),
    ]);
  context.subscriptions.push(
    vscode.window.createTreeView('keel.runs', { treeDataProvider: tree, showCollapseAll: true }),
    vscode.commands.registerCommand('keel.refreshRuns', refresh),
    vscode.commands.registerCommand('keel.cancelRun', (node: RunRow) => {
      if (node.kind === 'run') void client.request('cancelRun', { runId: node.runId });
    }),
  );
  // Runs and approvals recorded by another process (the CLI, a second window) show up when the database changes.
  context.subscriptions.push(databaseChanged(() => void refresh()));
}
