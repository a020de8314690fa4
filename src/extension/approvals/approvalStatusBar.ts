import * as vscode from 'vscode';
import type { Approval } from '../../protocol/records';
import { approvalPick, statusBarText } from './approvalText';
import type { PendingApprovals } from './pendingApprovals';

/** `$(bell) 2 approvals` in the status bar while approvals wait; a click offers them to review. */
export class ApprovalStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('keel.approvals', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: vscode.Disposable;
  private count = 0;

  constructor(approvals: PendingApprovals) {
    this.item.name = 'Keel Approvals';
    this.item.command = 'keel.reviewApprovals';
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    this.subscription = approvals.onDidChange((pending) => this.update(pending.length));
  }

  /** What it shows, or undefined while hidden. */
  get text(): string | undefined {
    return statusBarText(this.count);
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }

  private update(count: number): void {
    this.count = count;
    const text = statusBarText(count);
    if (text === undefined) {
      this.item.hide();
      return;
    }
    this.item.text = text;
    this.item.tooltip = `Keel: ${count === 1 ? 'an approval is' : `${count} approvals are`} waiting for a decision. Click to review.`;
    this.item.show();
  }
}

/** A quick pick of the pending approvals, oldest first; undefined when none is pending or picked. */
export async function pickApproval(approvals: PendingApprovals, title = 'Keel: Pending Approvals'): Promise<Approval | undefined> {
  await approvals.refresh();
  const pending = approvals.list();
  if (pending.length === 0) {
    void vscode.window.showInformationMessage('Keel: nothing is waiting for a decision.');
    return undefined;
  }
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    pending.map((approval) => ({ ...approvalPick(approval, now), approval })),
    { title, placeHolder: 'Pick an approval to review', matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.approval;
}
