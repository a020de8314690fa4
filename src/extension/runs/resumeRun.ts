import { basename } from 'node:path';
import * as vscode from 'vscode';
import { truncate } from '../../shared/format';
import type { Run } from '../../protocol/records';
import { followRun, reportRefusal, type FollowRunDeps } from '../ui/followRun';
import { interruptedNotice, runDescription } from '../ui/runStatus';

/**
 * Keel: Resume Run: continues an interrupted run in the runtime process, in the same run and
 * trace, with the progress and the result Run Agent shows. `target` is the run or its id; without
 * one the person picks among the interrupted runs. Returns the run as it stopped, or undefined
 * when there was nothing to resume or the runtime refused (its sentence is shown as an error).
 */
export async function resumeRun(deps: FollowRunDeps, target?: string | Run): Promise<Run | undefined> {
  let run: Run | undefined;
  try {
    run = typeof target === 'string' ? (await deps.client.request('getRun', { runId: target })).run : (target ?? (await pickInterruptedRun(deps)));
  } catch (error) {
    void reportRefusal(error, deps.log);
    return undefined;
  }
  if (!run) return undefined;
  const runId = run.id;
  return followRun(deps, `Keel · resuming ${basename(run.agentFile ?? run.agent)}`, () => deps.client.request('resumeRun', { runId }));
}

/**
 * When a runtime process starts and finds interrupted runs, says so once, offering to resume them
 * all or to show them. Runs already announced in this window are not announced again.
 */
export function offerToResumeInterrupted(deps: FollowRunDeps & { readonly revealRuns: () => void }): vscode.Disposable {
  const announced = new Set<string>();
  return deps.client.onDidStart(({ interrupted }) => {
    const message = interruptedNotice(interrupted, announced);
    for (const run of interrupted) announced.add(run.id);
    if (!message) return;
    const resumeAll = 'Resume All';
    const show = 'Show';
    void vscode.window.showWarningMessage(message, resumeAll, show).then((choice) => {
      if (choice === resumeAll) void resumeStillInterrupted(deps, interrupted);
      else if (choice === show) deps.revealRuns();
    });
  });
}

/** Resumes those of `runs` that are still interrupted (one may have been resumed since it was announced). */
async function resumeStillInterrupted(deps: FollowRunDeps, runs: readonly Run[]): Promise<void> {
  const current = await Promise.all(
    runs.map((run) =>
      deps.client.request('getRun', { runId: run.id }).then(
        (found) => found.run,
        (error: unknown) => {
          deps.log.warn(`Could not read run ${run.id} to resume it: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        },
      ),
    ),
  );
  await Promise.all(current.filter((run): run is Run => run?.state === 'interrupted').map((run) => resumeRun(deps, run)));
}

async function pickInterruptedRun(deps: FollowRunDeps): Promise<Run | undefined> {
  const runs = (await deps.client.request('listRuns', { limit: 200 })).filter((run) => run.state === 'interrupted');
  if (runs.length === 0) {
    void vscode.window.showInformationMessage('Keel has no interrupted runs to resume.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    runs.map((run) => ({ label: run.agent, description: runDescription(run), detail: truncate(run.input, 120), run })),
    { title: 'Keel: Resume Run', placeHolder: 'Pick an interrupted run', matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.run;
}
