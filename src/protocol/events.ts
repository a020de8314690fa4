import type { Approval, BudgetDimension, FailedAttempt, Run, Step, Usage } from './records';

/**
 * What a run reports while it goes, as the runtime process forwards it to the editor and the
 * editor to its webviews. `run_finished` means this execution stopped: the run ended, paused for a
 * decision, or was interrupted; its state says which.
 */
export type RunEvent =
  | { readonly type: 'run_started'; readonly run: Run }
  | { readonly type: 'step_started'; readonly step: Step }
  | { readonly type: 'step_finished'; readonly step: Step }
  | { readonly type: 'model_delta'; readonly runId: string; readonly seq: number; readonly text: string }
  | { readonly type: 'tool_log'; readonly runId: string; readonly seq: number; readonly message: string }
  | { readonly type: 'step_retry'; readonly runId: string; readonly seq: number; readonly failure: FailedAttempt }
  | { readonly type: 'approval_requested'; readonly approval: Approval }
  | {
      readonly type: 'budget_warning';
      readonly runId: string;
      readonly budgetId: string;
      readonly dimension: BudgetDimension;
      readonly spent: number;
      readonly limit: number;
    }
  | {
      /** A provider reported more tokens for a model call than the call held: spent all the same; `overLimit` names the budgets now over. */
      readonly type: 'provider_overrun';
      readonly runId: string;
      readonly seq: number;
      readonly model: string;
      readonly reserved: Usage;
      readonly reported: Usage;
      readonly overLimit: readonly string[];
    }
  | { readonly type: 'run_finished'; readonly run: Run };

export type BudgetWarningEvent = Extract<RunEvent, { type: 'budget_warning' }>;

/** The run an event is about, whatever its type. */
export function runIdOfEvent(event: RunEvent): string {
  switch (event.type) {
    case 'run_started':
    case 'run_finished':
      return event.run.id;
    case 'step_started':
    case 'step_finished':
      return event.step.runId;
    case 'approval_requested':
      return event.approval.runId;
    default:
      return event.runId;
  }
}
