import * as vscode from 'vscode';
import type { Approval } from '../../protocol/records';
import type { RuntimeClient } from '../client/runtimeClient';

/**
 * The approvals waiting for a decision in the workspace database, whichever process asked for
 * them (the runtime process, the CLI). Read again when a run here asks or stops, and when the
 * database changes; `onDidChange` fires when the set (or an escalation) changes.
 */
export class PendingApprovals implements vscode.Disposable {
  private pending: readonly Approval[] = [];
  private readonly changed = new vscode.EventEmitter<readonly Approval[]>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private refreshing: Promise<void> | undefined;
  private stale = false;

  constructor(
    private readonly client: RuntimeClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      client.onRunEvent((event) => {
        if (event.type === 'approval_requested' || event.type === 'run_started' || event.type === 'run_finished') void this.refresh();
      }),
    );
  }

  /** Oldest first. */
  list(): readonly Approval[] {
    return this.pending;
  }

  get(approvalId: string): Approval | undefined {
    return this.pending.find((approval) => approval.id === approvalId);
  }

  forRun(runId: string): readonly Approval[] {
    return this.pending.filter((approval) => approval.runId === runId || approval.under?.some((run) => run.runId === runId));
  }

  /**
   * Reads the pending approvals again. Calls while a read is under way share it, and it reads once
   * more after, so no change is missed. Failures are logged: the runtime process says itself when
   * it cannot start.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.stale = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.stale = false;
        try {
          this.update(await this.client.request('listApprovals', { status: 'pending' }));
        } catch (error) {
          this.log.warn(`Could not read the pending approvals: ${error instanceof Error ? error.message : String(error)}`);
        }
      } while (this.stale);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }

  private update(pending: readonly Approval[]): void {
    const key = (list: readonly Approval[]) => list.map((approval) => `${approval.id}@${approval.escalatedAt ?? ''}`).join(',');
    const sorted = [...pending].sort((a, b) => a.requestedAt - b.requestedAt);
    const changed = key(sorted) !== key(this.pending);
    this.pending = sorted;
    if (changed) this.changed.fire(sorted);
  }
}
