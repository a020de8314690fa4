import * as vscode from 'vscode';
import type { PendingApprovals } from '../approvals/pendingApprovals';
import { AgentCodeLensProvider } from './agentCodeLens';
import type { FollowRunDeps } from '../ui/followRun';
import { offerToResumeInterrupted, resumeRun } from './resumeRun';
import { runAgent } from './runAgent';
import type { RunPanels } from './runPanel';
import { runIdOf, type RunRow } from '../ui/runTarget';
import { RunsTree } from './runsTree';

export interface RunsDeps extends FollowRunDeps {
  readonly approvals: PendingApprovals;
  readonly panels: RunPanels;
  /** Fires when another process changed the run database. */
  readonly databaseChanged: vscode.Event<void>;
}

/**
 * Runs in the editor: the Runs view, Run Agent (from the palette and above each agent in its
 * file), the Run view of a run, cancelling, and resuming interrupted runs (offered as soon as a
 * runtime process finds some).
 */
export function registerRuns(context: vscode.ExtensionContext, deps: RunsDeps): void {
  const { client, approvals, panels } = deps;
  const tree = new RunsTree(client, approvals);
  const refresh = () =>
    Promise.all([
      tree.refresh().catch((error: unknown) => {
        void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
      }),
      approvals.refresh(),
    ]);
  context.subscriptions.push(
    tree,
    vscode.window.createTreeView('keel.runs', { treeDataProvider: tree, showCollapseAll: true }),
    vscode.commands.registerCommand('keel.refreshRuns', refresh),
    vscode.commands.registerCommand('keel.runAgent', (file?: vscode.Uri, input?: string) => runAgent({ ...deps, memory: context.workspaceState }, file, input)),
    vscode.languages.registerCodeLensProvider({ pattern: '**/*.agent.ts' }, new AgentCodeLensProvider()),
    vscode.commands.registerCommand('keel.showRun', (target: string | RunRow) => panels.show(runIdOf(target))),
    vscode.commands.registerCommand('keel.cancelRun', (node: RunRow) => {
      if (node.kind === 'run') void client.request('cancelRun', { runId: node.runId });
    }),
    vscode.commands.registerCommand('keel.resumeRun', (target?: string | RunRow) => resumeRun(deps, target === undefined ? undefined : runIdOf(target))),
    offerToResumeInterrupted({ ...deps, revealRuns: () => void vscode.commands.executeCommand('keel.runs.focus') }),
    // Runs a crashed runtime process left `running` read as interrupted now.
    client.onDidStart(({ interrupted }) => {
      if (interrupted.length > 0) void tree.refresh().catch(() => undefined);
    }),
    // Runs and approvals recorded by another process (the CLI, a second window) show up when the database changes.
    deps.databaseChanged(() => void refresh()),
    // For integration tests, which must not import the extension's modules: what the Runs view shows.
    vscode.commands.registerCommand('keel._test.runsView', () => tree.snapshot()),
    vscode.commands.registerCommand('keel._test.runsViewThreads', () => tree.threadsSnapshot()),
  );
  // Runs interrupted while no window was open are offered as soon as the workspace opens.
  if (client.hasDatabase()) void client.info().catch(() => undefined);
}
