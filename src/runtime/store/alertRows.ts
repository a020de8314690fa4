import type { AlertKind, AlertRecord, AlertSeverity, DeliveryOutcome, DeliveryRecord, DeliveryStatus, SpendScope } from '../alerts/outbox';

/** Alert outbox rows as SQLite and PostgreSQL return them (PostgreSQL's BIGINTs as strings). */

export interface AlertRow {
  id: string;
  key: string;
  dedup_key: string;
  event: string;
  severity: string;
  title: string;
  body: string;
  run_id: string | null;
  facts: string;
  repeats: number | string;
  created_at: number | string;
}

export interface DeliveryRow {
  alert_id: string;
  target: string;
  status: string;
  attempts: number | string;
  next_attempt_at: number | string;
  last_error: string | null;
  sent_at: number | string | null;
  lease_owner: string | null;
  lease_until: number | string | null;
}

const orNull = (value: number | string | null): number | null => (value === null ? null : Number(value));

export function toDelivery(row: DeliveryRow): DeliveryRecord {
  return {
    alertId: row.alert_id,
    target: row.target,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    lastError: row.last_error,
    sentAt: orNull(row.sent_at),
    leaseOwner: row.lease_owner,
    leaseUntil: orNull(row.lease_until),
  };
}

export function toAlert(row: AlertRow, deliveries: readonly DeliveryRow[]): AlertRecord {
  return {
    id: row.id,
    key: row.key,
    dedupKey: row.dedup_key,
    event: row.event as AlertKind,
    severity: row.severity as AlertSeverity,
    title: row.title,
    body: row.body,
    runId: row.run_id,
    facts: JSON.parse(row.facts) as Record<string, unknown>,
    at: Number(row.created_at),
    repeats: Number(row.repeats),
    deliveries: deliveries.filter((delivery) => delivery.alert_id === row.id).map(toDelivery),
  };
}

/** Whether a claimed lease may be taken over now: none, run out, or held by a process that is gone. */
export function leaseFree(row: DeliveryRow, now: number, isOwnerAlive: (owner: string) => boolean): boolean {
  return row.lease_owner === null || orNull(row.lease_until)! <= now || !isOwnerAlive(row.lease_owner);
}

/** The SQL that sums a scope's spend, with `?` placeholders for since and until then the scope's value. */
export function spendQuery(scope: SpendScope): { readonly sql: string; readonly value: string | undefined } {
  if (scope.pool !== undefined) {
    return {
      sql: `SELECT COALESCE(SUM(actual_usd), 0) AS usd FROM reservations
            WHERE status = 'settled' AND closed_at >= ? AND closed_at < ? AND budget_ids LIKE ? ESCAPE '\\'`,
      value: `%${JSON.stringify(`pool:${scope.pool}`).replace(/[\\%_]/g, (c) => `\\${c}`)}%`,
    };
  }
  if (scope.agent !== undefined) {
    return {
      sql: `SELECT COALESCE(SUM(s.cost_usd), 0) AS usd FROM steps s JOIN runs r ON r.id = s.run_id
            WHERE s.kind = 'model' AND s.ended_at >= ? AND s.ended_at < ? AND r.agent = ?`,
      value: scope.agent,
    };
  }
  if (scope.model !== undefined) {
    return {
      sql: `SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM steps WHERE kind = 'model' AND ended_at >= ? AND ended_at < ? AND name = ?`,
      value: scope.model,
    };
  }
  return { sql: `SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM steps WHERE kind = 'model' AND ended_at >= ? AND ended_at < ?`, value: undefined };
}

/** `?` placeholders as PostgreSQL's `$1, $2…`. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The columns a delivery's outcome sets: its status, when it was sent, its error, and when it is next tried. */
export function settledColumns(outcome: DeliveryOutcome): { status: DeliveryStatus; sentAt: number | null; error: string | null; next: number } {
  if (outcome.sent) return { status: 'sent', sentAt: outcome.at, error: null, next: outcome.at };
  return { status: outcome.retryAt === null ? 'failed' : 'pending', sentAt: null, error: outcome.error, next: outcome.retryAt ?? outcome.at };
}
