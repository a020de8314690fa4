import { formatDuration, truncate } from '../../shared/format';
import { RUN_STATE_LABELS, runDuration } from '../../shared/runText';
import type { Run } from '../../protocol/records';

/** How a run's state, its outcome and what to do about it read in the editor (no vscode here, so unit tests can run it). */

/** The line next to a run in the Runs view, e.g. `interrupted · 2 steps · 1.2 s`. */
export function runDescription(run: Run, now: number = Date.now()): string {
  const steps = `${run.stepCount} step${run.stepCount === 1 ? '' : 's'}`;
  return `${RUN_STATE_LABELS[run.state]} · ${steps} · ${formatDuration(runDuration(run, now))}`;
}

export interface Outcome {
  readonly severity: 'info' | 'warning' | 'error';
  readonly text: string;
}

/** What the notification says when a run that the editor started or resumed stops. */
export function outcomeMessage(run: Run): Outcome {
  const name = `Keel · ${run.agent}`;
  switch (run.state) {
    case 'completed':
      return { severity: 'info', text: `${name} completed in ${formatDuration(runDuration(run))}: ${truncate(run.result ?? '', 200)}` };
    case 'cancelled':
      return { severity: 'info', text: `${name} was cancelled.` };
    case 'failed':
      return { severity: 'error', text: `${name} failed: ${truncate(run.error ?? '', 300)}` };
    case 'budget_exceeded':
      return { severity: 'warning', text: `${name} stopped at its budget: ${truncate(run.error ?? '', 300)}` };
    case 'waiting_approval':
      return { severity: 'warning', text: `${name} is waiting for a decision: ${truncate(run.error ?? '', 400)}` };
    case 'interrupted':
      return { severity: 'error', text: `${name} was interrupted: ${truncate(run.error ?? '', 500)}` };
    case 'running':
      return { severity: 'info', text: `${name} is running.` };
  }
}

/**
 * The one notification for interrupted runs a runtime process found as it started, or nothing
 * when every one of them was announced already in this window.
 */
export function interruptedNotice(interrupted: readonly Pick<Run, 'id'>[], announced: ReadonlySet<string>): string | undefined {
  if (interrupted.every((run) => announced.has(run.id))) return undefined;
  const count = interrupted.length;
  return `Keel found ${count} interrupted run${count === 1 ? '' : 's'}.`;
}
