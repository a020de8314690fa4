import * as vscode from 'vscode';
import type { Approval } from '../../protocol/records';
import { act, refuse, type ActionInput, type ActionOutcome, type ApprovalActionDeps } from './approvalActions';
import { ApprovalNotifications } from './approvalNotifications';
import { ACTION_COMMANDS, ApprovalReview } from './approvalReview';
import { ApprovalStatsDocument } from './approvalStats';
import { ApprovalStatusBar, pickApproval } from './approvalStatusBar';
import { ACTION_LABELS, approvalMessage, type ApprovalAction } from './approvalText';
import type { FollowRunDeps } from '../ui/followRun';
import { Notifier } from '../ui/notifier';
import type { PendingApprovals } from './pendingApprovals';
import type { RunRow } from '../ui/runTarget';

/** What an approval command is given: a review document, a row of the Runs view, an approval id, or nothing (pick one). */
type ApprovalTarget = vscode.Uri | RunRow | string | undefined;

/** What `keel._test.pressApprovalAction` takes: a button to press as a click does, with what it would ask for. */
interface PressParams extends ActionInput {
  readonly approvalId: string;
  readonly action: ApprovalAction;
}

/**
 * Human in the loop in the editor: notifications with decisions as buttons, the review, the
 * approvals in the status bar, the stats. Decisions go to the runtime process, which records
 * them as the OS user's, via `vscode`.
 */
export function registerApprovals(context: vscode.ExtensionContext, follow: FollowRunDeps, approvals: PendingApprovals): void {
  const review = new ApprovalReview(follow.client, approvals);
  const deps: ApprovalActionDeps = {
    ...follow,
    approvals,
    review: (approval) => review.open(approval),
    closeReview: (approvalId) => review.close(approvalId),
  };
  const reviewPicked = async (): Promise<ActionOutcome> => {
    const picked = await pickApproval(approvals);
    if (picked) await review.open(picked);
    return {};
  };
  const notifier = new Notifier<ActionInput, ActionOutcome>(follow.log, {});
  const notifications = new ApprovalNotifications(notifier, approvals, (approval, action, input) => act(deps, approval, action, input), reviewPicked);
  const statusBar = new ApprovalStatusBar(approvals);
  const stats = new ApprovalStatsDocument(follow.client);

  /** An action on the approval as the person saw it: in its review (with the arguments as edited there), its row, or by id. */
  const command =
    (action: ApprovalAction) =>
    async (target: ApprovalTarget): Promise<ActionOutcome> => {
      if (target instanceof vscode.Uri) {
        const approval = review.approvalOf(target);
        if (!approval) return refuse(follow, 'This document is not the review of a pending approval.');
        if (action !== 'approve' && action !== 'retry') return act(deps, approval, action);
        const edited = await review.argumentsIn(target);
        return edited.ok ? act(deps, approval, action, { args: edited.args }) : refuse(follow, edited.error);
      }
      const approval = await approvalFor(target);
      return approval ? act(deps, approval, action) : {};
    };
  const approvalFor = (target: Exclude<ApprovalTarget, vscode.Uri>): Promise<Approval | undefined> | Approval | undefined => {
    if (target === undefined) return pickApproval(approvals);
    if (typeof target === 'string') return approvals.get(target);
    return target.kind === 'approval' ? target.approval : undefined;
  };

  context.subscriptions.push(
    review,
    notifications,
    statusBar,
    stats,
    ...(Object.keys(ACTION_COMMANDS) as ApprovalAction[]).map((action) => vscode.commands.registerCommand(ACTION_COMMANDS[action], command(action))),
    vscode.commands.registerCommand('keel.reviewApprovals', reviewPicked),
    vscode.commands.registerCommand('keel.showApprovalStats', () => stats.show()),
    // For integration tests, which cannot click notifications: what is pending and what was shown,
    // and a button pressed through the same path a click takes.
    vscode.commands.registerCommand('keel._test.approvals', () => ({
      pending: approvals.list().map((approval) => ({ ...approval, text: approvalMessage(approval, Date.now()) })),
      toasts: notifier.records(),
      statusBar: statusBar.text ?? null,
    })),
    vscode.commands.registerCommand('keel._test.pressApprovalAction', ({ approvalId, action, ...given }: PressParams) => {
      const input: ActionInput = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
      const pressed = notifier.press(approvalId, ACTION_LABELS[action], input);
      if (pressed) return pressed;
      const approval = approvals.get(approvalId);
      return approval ? act(deps, approval, action, input) : Promise.resolve({ error: `No pending approval ${approvalId}.` });
    }),
  );

  // After a window reload, the approvals still pending are announced again.
  if (follow.client.hasDatabase()) void approvals.refresh();
}
