import type { Approval, Step } from '../../protocol/records';

/**
 * A row of the Runs view that names one run: the run (`inThread` when it is the row under its
 * thread), one of its steps, or one of its pending approvals. Commands from the view's menus are
 * given the row; from elsewhere, a run id.
 */
export type RunRow =
  | { readonly kind: 'run'; readonly runId: string; readonly inThread?: string }
  | { readonly kind: 'step'; readonly step: Step }
  | { readonly kind: 'approval'; readonly approval: Approval };

/** The run a command is about: given by id, or by a row of the Runs view. */
export function runIdOf(target: string | RunRow): string {
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
