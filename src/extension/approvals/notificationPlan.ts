import type { Approval } from '../../protocol/records';

/** Which approval notifications to show so that several pending at once do not flood the screen (no vscode here). */

/** At most this many approval notifications are open at a time. */
export const MAX_APPROVAL_TOASTS = 3;

/** What has been shown already. */
export interface NotificationState {
  /** Approvals whose own notification is still open (neither clicked nor closed). */
  readonly open: ReadonlySet<string>;
  /** `announcementKey`s of approvals already announced, one by one or in a summary. */
  readonly announced: ReadonlySet<string>;
  /** Whether the summary notification is still open. */
  readonly summaryOpen: boolean;
}

export interface NotificationPlan {
  /** Approvals to announce with a notification of their own, oldest first. */
  readonly show: readonly Approval[];
  /** Approvals announced by the summary instead (shown now, or already open). */
  readonly summarized: readonly Approval[];
  /** The count for a new summary notification (every pending approval), when one is to be shown. */
  readonly summary: number | undefined;
}

/**
 * An approval is announced once; again only when it is escalated (it then goes to someone else,
 * with a new deadline).
 */
export function announcementKey(approval: Pick<Approval, 'id' | 'escalatedAt'>): string {
  return approval.escalatedAt === null ? approval.id : `${approval.id}@${approval.escalatedAt}`;
}

/**
 * Announces each pending approval not announced yet: one by one while fewer than `limit` of
 * their notifications are open, and the rest in one summary ("5 approvals are waiting"), unless
 * a summary is still open.
 */
export function planNotifications(pending: readonly Approval[], state: NotificationState, limit = MAX_APPROVAL_TOASTS): NotificationPlan {
  const open = pending.filter((approval) => state.open.has(approval.id)).length;
  const fresh = [...pending].filter((approval) => !state.announced.has(announcementKey(approval))).sort((a, b) => a.requestedAt - b.requestedAt);
  const slots = Math.max(0, limit - open);
  const show = fresh.slice(0, slots);
  const summarized = fresh.slice(slots);
  return { show, summarized, summary: summarized.length > 0 && !state.summaryOpen ? pending.length : undefined };
}
