import type { BudgetDimension } from '../budget/budget';
import type { FailedAttempt } from '../effects/retry';
import type { Usage } from '../model/model';
import type { ApprovalRecord, RunRecord, StepRecord } from '../store/checkpointStore';

/**
 * What a run reports while it goes: plain JSON, so it crosses process and webview boundaries as
 * is. `run_finished` means this execution stopped: the run ended, paused for a decision, or was
 * interrupted; its record's state says which.
 */
export type RunEvent =
  | { readonly type: 'run_started'; readonly run: RunRecord }
  | { readonly type: 'step_started'; readonly step: StepRecord }
  | { readonly type: 'step_finished'; readonly step: StepRecord }
  | { readonly type: 'model_delta'; readonly runId: string; readonly seq: number; readonly text: string }
  | { readonly type: 'tool_log'; readonly runId: string; readonly seq: number; readonly message: string }
  | { readonly type: 'step_retry'; readonly runId: string; readonly seq: number; readonly failure: FailedAttempt }
  | { readonly type: 'approval_requested'; readonly approval: ApprovalRecord }
  | {
      readonly type: 'budget_warning';
      readonly runId: string;
      readonly budgetId: string;
      readonly dimension: BudgetDimension;
      readonly spent: number;
      readonly limit: number;
    }
  | {
      /**
       * A provider reported more tokens for a model call than the call held on its budgets: more
       * output than the limit it was sent, or more input than Keel counted. What it reported is
       * spent; `overLimit` names the budgets that took over their limits.
       */
      readonly type: 'provider_overrun';
      readonly runId: string;
      readonly seq: number;
      readonly model: string;
      readonly reserved: Usage;
      readonly reported: Usage;
      readonly overLimit: readonly string[];
    }
  | { readonly type: 'run_finished'; readonly run: RunRecord };

export type RunEventListener = (event: RunEvent) => void;

/** The run an event is about, whatever its type. */
export function runIdOfEvent(event: RunEvent): string {
  if ('run' in event) return event.run.id;
  if ('step' in event) return event.step.runId;
  if ('approval' in event) return event.approval.runId;
  return event.runId;
}
