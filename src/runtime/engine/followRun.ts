import type { RunEvent, RunEventListener } from '../agent/events';
import type { CheckpointStore, RunRecord, StepRecord } from '../store/checkpointStore';
import { approvalsOfTree } from '../store/runTree';
import { hasStopped } from './engine';

/**
 * Whether a run executing in another process has stopped for now: ended, or waiting for a
 * decision nobody has made yet. A paused run whose decisions are all made is about to go on.
 */
export async function hasStoppedElsewhere(store: CheckpointStore, run: RunRecord): Promise<boolean> {
  if (!hasStopped(run)) return false;
  if (run.state !== 'waiting_approval') return true;
  return (await approvalsOfTree(store, run.id, 'pending')).length > 0;
}

/**
 * Reports a run that executes in another process (on Restate, say) as the events a local run
 * emits, read from the store it is recorded in: its start, each step as it starts and ends, the
 * approvals it asks for, and its stop. Resolves with the run once it has reported it stopping, or
 * with undefined when `signal` aborts.
 */
export async function followRun(
  store: CheckpointStore,
  runId: string,
  onEvent: RunEventListener,
  options: { readonly signal?: AbortSignal; readonly intervalMs?: number; readonly since?: number } = {},
): Promise<RunRecord | undefined> {
  const intervalMs = options.intervalMs ?? 100;
  const since = options.since ?? Date.now();
  const seen = new Map<number, StepRecord['status']>();
  const asked = new Set<string>();
  let announced = false;
  // Steps that ended before `since` (by default, before following began) were reported then.
  for (const step of await store.getSteps(runId)) {
    if (step.status !== 'in_progress' && step.endedAt !== null && step.endedAt < since) seen.set(step.seq, step.status);
  }
  for (;;) {
    if (options.signal?.aborted) return undefined;
    const run = await store.getRun(runId);
    if (run) {
      // The run's start comes first, before anything else about it.
      const report = (event: RunEvent) => {
        if (!announced) onEvent({ type: 'run_started', run });
        announced = true;
        onEvent(event);
      };
      if (!announced && run.state === 'running') {
        announced = true;
        onEvent({ type: 'run_started', run });
      }
      for (const step of await store.getSteps(runId)) {
        const before = seen.get(step.seq);
        if (before === step.status) continue;
        if (before === undefined && step.status === 'in_progress') report({ type: 'step_started', step });
        if (step.status !== 'in_progress') report({ type: 'step_finished', step });
        seen.set(step.seq, step.status);
      }
      for (const approval of await store.listApprovals({ runId, status: 'pending' })) {
        if (asked.has(approval.id)) continue;
        asked.add(approval.id);
        report({ type: 'approval_requested', approval });
      }
      if (await hasStoppedElsewhere(store, run)) {
        report({ type: 'run_finished', run });
        return run;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
