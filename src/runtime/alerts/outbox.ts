import { sha256 } from '../hash/canonicalJson';
import type { CheckpointStore } from '../store/checkpointStore';
import { storePart } from '../store/storeParts';
import type { AlertEvent } from './alertConfig';

/**
 * The alert outbox: alerts are written to the run database first and delivered from there, so an
 * alert raised by a process that dies before sending it is sent by the next one. Each alert has
 * one idempotency key (the same condition raised by two processes is one alert) and one delivery
 * per recipient, each tried until it is sent or fails for good. Delivery is at least once: a
 * process that dies after sending and before recording it leaves the delivery to be sent again,
 * with the same key, which receivers can use to drop the repeat.
 */

export type AlertKind = AlertEvent | 'test';
export type AlertSeverity = 'info' | 'warning' | 'error';

export interface NewAlert {
  /** The idempotency key: one alert per key, ever. */
  readonly key: string;
  /** Alerts with the same dedup key within the dedup window are one: the later ones only count as repeats. */
  readonly dedupKey: string;
  readonly event: AlertKind;
  readonly severity: AlertSeverity;
  /** One line. */
  readonly title: string;
  /** A few lines: what happened, and what to do about it. */
  readonly body: string;
  /** The run it is about, if any: the editor's notification opens it. */
  readonly runId: string | null;
  /** The facts behind it, for JSON receivers. */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly at: number;
}

export type DeliveryStatus = 'pending' | 'sent' | 'failed';

export interface DeliveryRecord {
  readonly alertId: string;
  /** A channel's name, or an address (an email address or a webhook URL) that an escalation names. */
  readonly target: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** When it is next tried, while pending. */
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly sentAt: number | null;
  /** The process delivering it now, and until when it may (a process that died leaves it to others then, or at once once it is known dead). */
  readonly leaseOwner: string | null;
  readonly leaseUntil: number | null;
}

export interface AlertRecord extends NewAlert {
  readonly id: string;
  /** Alerts like it raised within the dedup window after it, and not sent. */
  readonly repeats: number;
  readonly deliveries: readonly DeliveryRecord[];
}

/** A delivery this process may now attempt, with its alert. */
export interface ClaimedDelivery {
  readonly alert: AlertRecord;
  readonly delivery: DeliveryRecord;
}

export type DeliveryOutcome =
  | { readonly sent: true; readonly at: number }
  /** Not sent: tried again at `retryAt`, or failed for good when it is null. */
  | { readonly sent: false; readonly at: number; readonly error: string; readonly retryAt: number | null };

/** What spend a threshold counts: everything, or one agent's, one model's or one pool's. */
export interface SpendScope {
  readonly agent?: string;
  readonly model?: string;
  readonly pool?: string;
}

export interface AlertOutbox {
  /**
   * Records an alert and a pending delivery to each target, in one transaction. Nothing is
   * recorded (undefined) when an alert with its key exists, or one with its dedup key was raised
   * within `dedupWindowMs` before it (that one then counts a repeat).
   */
  enqueue(alert: NewAlert, targets: readonly string[], dedupWindowMs: number): Promise<AlertRecord | undefined>;
  /**
   * Takes up to `limit` deliveries that are due, for `owner`, until `now + leaseMs`: pending ones
   * whose time has come, not leased, or leased by a process that is gone or whose lease ran out.
   * `targets` says which targets this process can deliver to.
   */
  claim(options: {
    readonly owner: string;
    readonly now: number;
    readonly leaseMs: number;
    readonly limit: number;
    readonly targets: (target: string) => boolean;
    readonly isOwnerAlive: (owner: string) => boolean;
  }): Promise<ClaimedDelivery[]>;
  /** Records how a delivery `owner` claimed went; false (changing nothing) when another process has taken it over meanwhile. */
  settle(alertId: string, target: string, owner: string, outcome: DeliveryOutcome): Promise<boolean>;
  getAlert(id: string): Promise<AlertRecord | undefined>;
  /** Newest first; only those with a delivery in `status`, when given. */
  list(options?: { readonly status?: DeliveryStatus; readonly limit?: number }): Promise<AlertRecord[]>;
  /** The USD spent from `since` (inclusive) to `until` (exclusive): model steps' costs, or for a pool the reservations settled on it. */
  spend(scope: SpendScope, since: number, until: number): Promise<number>;
}

/** A store that keeps alerts: SQLite's and PostgreSQL's do. */
export interface AlertCapableStore extends CheckpointStore {
  readonly alerts: AlertOutbox;
}

export function alertsOf(store: CheckpointStore): AlertOutbox {
  return storePart<'alerts', AlertOutbox>(store, 'alerts', 'alert outbox');
}

/** An alert's id, from its key: the same key always names the same alert. */
export function alertId(key: string): string {
  return `alert_${sha256(key).slice(0, 20)}`;
}
