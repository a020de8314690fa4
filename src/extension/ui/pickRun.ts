import * as vscode from 'vscode';
import type { Run } from '../../protocol/records';
import { formatAgo, truncate } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { runDescription } from './runStatus';
import { runIdOf, type RunRow } from './runTarget';

const RECENT_RUNS = 50;

/** A quick pick of the workspace's recent runs (but `except`), newest first; undefined when there are none or none was picked. */
export async function pickRecentRun(client: RuntimeClient, title: string, except?: string): Promise<Run | undefined> {
  const runs = (await client.request('listRuns', { limit: RECENT_RUNS })).filter((run) => run.id !== except);
  if (runs.length === 0) {
    void vscode.window.showInformationMessage('Keel has no runs in this workspace yet.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    runs.map((run) => ({ label: run.agent, description: `${runDescription(run)} · ${formatAgo(Date.now() - run.createdAt)}`, detail: truncate(run.input, 120), run })),
    { title, placeHolder: 'Pick a run', matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.run;
}

/** A command that shows a run: the one it is given (a run id, a row of the Runs view), or one picked from the recent runs. */
export function showRunCommand(client: RuntimeClient, title: string, show: (runId: string) => void): (target?: string | RunRow) => Promise<void> {
  return async (target) => {
    if (target !== undefined) {
      show(runIdOf(target));
      return;
    }
    try {
      const run = await pickRecentRun(client, title);
      if (run) show(run.id);
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    }
  };
}
