import * as vscode from 'vscode';
import type { PendingApprovals } from '../approvals/pendingApprovals';
import { AgentCodeLensProvider } from './agentCodeLens';
import { comparePanels, compareRunsCommand, showComparison } from './comparePanel';
import type { FollowRunDeps } from '../ui/followRun';
import { offerToResumeInterrupted, resumeRun } from './resumeRun';
import { runAgent } from './runAgent';
import type { RunPanels } from './runPanel';
import { runIdOf, type RunRow } from '../ui/runTarget';
import { RunsTree } from './runsTree';
import { parseRunFilter } from './runFilter';

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
  const view = vscode.window.createTreeView('keel.runs', { treeDataProvider: tree, showCollapseAll: true, canSelectMany: true });
  const compare = comparePanels(context.extensionUri, client, (runId, seq) => void vscode.commands.executeCommand('keel.showRun', runId, seq));
  // From the Runs view: the row and the rows selected; from elsewhere (a golden failure, a fork): two run ids.
  const compareRuns = (first?: string | RunRow, second?: string | readonly RunRow[]) =>
    typeof first === 'string' && typeof second === 'string' ? showComparison(compare, first, second) : compareRunsCommand(client, compare, first, typeof second === 'string' ? undefined : second);
  let query = '';
  const filterRuns = async (given?: string) => {
    const text =
      given ??
      (await vscode.window.showInputBox({
        title: 'Filter Runs',
        value: query,
        prompt: 'Words to find in a run’s input, result or error; agent:<name>, state:<failed|completed|waiting|…>, flagged. Empty shows every run.',
        placeHolder: 'agent:travel state:failed paris',
        validateInput: (value) => {
          const parsed = parseRunFilter(value);
          return 'error' in parsed ? parsed.error : undefined;
        },
      }));
    if (text === undefined) return;
    const parsed = parseRunFilter(text);
    if ('error' in parsed) {
      void vscode.window.showErrorMessage(parsed.error);
      return;
    }
    query = parsed.query;
    const { shown, of } = await tree.setFilter(query === '' ? undefined : parsed);
    view.message = query === '' ? undefined : `Filtered by “${query}”: ${shown} of ${of} runs.`;
    await vscode.commands.executeCommand('setContext', 'keel.runsFiltered', query !== '');
  };
  context.subscriptions.push(
    tree,
    view,
    compare,
    vscode.commands.registerCommand('keel.compareRuns', compareRuns),
    vscode.commands.registerCommand('keel.compareWith', (row?: RunRow) => compareRuns(row)),
    vscode.commands.registerCommand('keel.filterRuns', filterRuns),
    vscode.commands.registerCommand('keel.clearRunsFilter', () => filterRuns('')),
    vscode.commands.registerCommand('keel.refreshRuns', refresh),
    vscode.commands.registerCommand('keel.runAgent', (file?: vscode.Uri, input?: string) => runAgent({ ...deps, memory: context.workspaceState }, file, input)),
    vscode.languages.registerCodeLensProvider({ pattern: '**/*.agent.ts' }, new AgentCodeLensProvider()),
    // From a step's row (a click, or its menu), the Run view opens at that step.
    vscode.commands.registerCommand('keel.showRun', (target: string | RunRow, seq?: number) => {
      const runId = runIdOf(target);
      panels.show(runId);
      const step = typeof seq === 'number' ? seq : typeof target !== 'string' && target.kind === 'step' ? target.step.seq : undefined;
      if (step !== undefined) for (const open of panels.views()) if (open.runId === runId) open.focusStep(step);
    }),
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
    vscode.commands.registerCommand('keel._test.runsViewSubAgents', (runId: string) => tree.subAgentsSnapshot(runId)),
    vscode.commands.registerCommand('keel._test.runsViewSteps', (runId: string) => tree.stepsSnapshot(runId)),
    vscode.commands.registerCommand('keel._test.runsViewMessage', () => view.message ?? ''),
    vscode.commands.registerCommand('keel._test.comparisonViews', () => compare.views().map((open) => open.shown ?? null)),
  );
  // Runs interrupted while no window was open are offered as soon as the workspace opens.
  if (client.hasDatabase()) void client.info().catch(() => undefined);
}
