import type * as vscode from 'vscode';
import type { Approval } from '../../protocol/records';
import type { ActionInput, ActionOutcome } from './approvalActions';
import { ACTION_LABELS, actionsFor, approvalMessage, distinctMessage, waitingMessage, type ApprovalAction } from './approvalText';
import { announcementKey, planNotifications } from './notificationPlan';
import type { Notifier } from '../ui/notifier';
import type { PendingApprovals } from './pendingApprovals';

/**
 * A notification per pending approval, with its decisions as buttons; at most three open at a
 * time, the rest in one summary. Approvals decided elsewhere retire their notifications.
 */
export class ApprovalNotifications implements vscode.Disposable {
  private readonly announced = new Set<string>();
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly notifier: Notifier<ActionInput, ActionOutcome>,
    approvals: PendingApprovals,
    private readonly act: (approval: Approval, action: ApprovalAction, input: ActionInput) => Promise<ActionOutcome>,
    private readonly pick: () => Promise<ActionOutcome>,
  ) {
    this.subscription = approvals.onDidChange((pending) => this.update(pending));
  }

  update(pending: readonly Approval[]): void {
    this.notifier.retireAllBut(new Set(pending.map((approval) => approval.id)));
    const open = this.notifier.openOnes();
    const summary = open.find((toast) => toast.summary);
    const plan = planNotifications(pending, {
      open: new Set(open.filter((toast) => !toast.summary).flatMap((toast) => toast.about)),
      announced: this.announced,
      summaryOpen: summary !== undefined,
    });
    const now = Date.now();
    const shown = new Set(open.map((toast) => toast.text));
    for (const approval of plan.show) {
      this.announced.add(announcementKey(approval));
      const buttons = actionsFor(approval.kind).map((action) => ({
        label: ACTION_LABELS[action],
        // The approval as shown: a decision names the hash of the arguments the person saw.
        run: (input: ActionInput) => this.act(approval, action, input),
      }));
      const text = distinctMessage(approvalMessage(approval, now), approval, shown);
      shown.add(text);
      this.notifier.show(text, buttons, [approval.id]);
    }
    for (const approval of plan.summarized) this.announced.add(announcementKey(approval));
    const summarized = plan.summarized.map((approval) => approval.id);
    if (plan.summary !== undefined) {
      this.notifier.show(waitingMessage(plan.summary), [{ label: ACTION_LABELS.review, run: () => this.pick() }], summarized, true);
    } else if (summary && summarized.length > 0) {
      this.notifier.cover(summary.id, summarized);
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
