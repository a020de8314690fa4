import { alertId, type AlertOutbox, type AlertRecord, type ClaimedDelivery, type DeliveryOutcome, type DeliveryStatus, type NewAlert, type SpendScope } from '../alerts/outbox';
import { leaseFree, numbered, settledColumns, spendQuery, toAlert, type AlertRow, type DeliveryRow } from './alertRows';
import type { Connection } from './postgresConnection';

/** The alert outbox in the PostgreSQL store (its fourth migration), as the SQLite store keeps it. */
export class PostgresAlertOutbox implements AlertOutbox {
  constructor(private readonly connection: Connection) {}

  async enqueue(alert: NewAlert, targets: readonly string[], dedupWindowMs: number): Promise<AlertRecord | undefined> {
    const id = alertId(alert.key);
    const inserted = await this.connection.transaction(async (db) => {
      // One dedup key at a time: two processes raising the same condition at once make one alert.
      await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [alert.dedupKey]);
      if ((await db.query('SELECT 1 FROM alerts WHERE key = $1', [alert.key])).rows.length > 0) return false;
      const earlier = (
        await db.query('SELECT id FROM alerts WHERE dedup_key = $1 AND created_at > $2 AND created_at <= $3 ORDER BY created_at DESC LIMIT 1', [
          alert.dedupKey,
          alert.at - dedupWindowMs,
          alert.at,
        ])
      ).rows[0] as { id: string } | undefined;
      if (earlier) {
        await db.query('UPDATE alerts SET repeats = repeats + 1 WHERE id = $1', [earlier.id]);
        return false;
      }
      const inserted = await db.query(
        `INSERT INTO alerts (id, key, dedup_key, event, severity, title, body, run_id, facts, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING id`,
        [id, alert.key, alert.dedupKey, alert.event, alert.severity, alert.title, alert.body, alert.runId, JSON.stringify(alert.facts), alert.at],
      );
      if (inserted.rows.length === 0) return false;
      for (const target of targets) {
        await db.query(`INSERT INTO alert_deliveries (alert_id, target, status, next_attempt_at) VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING`, [
          id,
          target,
          alert.at,
        ]);
      }
      return true;
    });
    return inserted ? this.getAlert(id) : undefined;
  }

  async claim(options: Parameters<AlertOutbox['claim']>[0]): Promise<ClaimedDelivery[]> {
    const rows = (await this.connection.query(
      `SELECT * FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, alert_id LIMIT $2`,
      [options.now, options.limit * 4],
    )) as DeliveryRow[];
    const candidates = rows.filter((row) => options.targets(row.target) && leaseFree(row, options.now, options.isOwnerAlive)).slice(0, options.limit);
    const claimed: ClaimedDelivery[] = [];
    for (const row of candidates) {
      const taken = await this.connection.query(
        `UPDATE alert_deliveries SET lease_owner = $3, lease_until = $4, attempts = attempts + 1
         WHERE alert_id = $1 AND target = $2 AND status = 'pending'
           AND lease_owner IS NOT DISTINCT FROM $5 AND lease_until IS NOT DISTINCT FROM $6 RETURNING alert_id`,
        [row.alert_id, row.target, options.owner, options.now + options.leaseMs, row.lease_owner, row.lease_until === null ? null : Number(row.lease_until)],
      );
      if (taken.length === 0) continue;
      const alert = await this.getAlert(row.alert_id);
      const delivery = alert?.deliveries.find((candidate) => candidate.target === row.target);
      if (alert && delivery) claimed.push({ alert, delivery });
    }
    return claimed;
  }

  async settle(id: string, target: string, owner: string, outcome: DeliveryOutcome): Promise<boolean> {
    const { status, sentAt, error, next } = settledColumns(outcome);
    const changed = await this.connection.query(
      `UPDATE alert_deliveries SET status = $4, sent_at = $5, last_error = $6, next_attempt_at = $7, lease_owner = NULL, lease_until = NULL
       WHERE alert_id = $1 AND target = $2 AND status = 'pending' AND lease_owner = $3 RETURNING alert_id`,
      [id, target, owner, status, sentAt, error, next],
    );
    return changed.length === 1;
  }

  async getAlert(id: string): Promise<AlertRecord | undefined> {
    const [row] = (await this.connection.query('SELECT * FROM alerts WHERE id = $1', [id])) as AlertRow[];
    if (!row) return undefined;
    return toAlert(row, (await this.connection.query('SELECT * FROM alert_deliveries WHERE alert_id = $1 ORDER BY target', [id])) as DeliveryRow[]);
  }

  async list(options: { readonly status?: DeliveryStatus; readonly limit?: number } = {}): Promise<AlertRecord[]> {
    const limit = options.limit ?? 50;
    const rows = (
      options.status
        ? await this.connection.query(
            `SELECT * FROM alerts a WHERE EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.status = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2`,
            [options.status, limit],
          )
        : await this.connection.query('SELECT * FROM alerts ORDER BY created_at DESC, id DESC LIMIT $1', [limit])
    ) as AlertRow[];
    if (rows.length === 0) return [];
    const deliveries = (await this.connection.query('SELECT * FROM alert_deliveries WHERE alert_id = ANY($1) ORDER BY target', [rows.map((row) => row.id)])) as DeliveryRow[];
    return rows.map((row) => toAlert(row, deliveries));
  }

  async spend(scope: SpendScope, since: number, until: number): Promise<number> {
    const { sql, value } = spendQuery(scope);
    const [row] = (await this.connection.query(numbered(sql), [since, until, ...(value === undefined ? [] : [value])])) as { usd: number | string }[];
    return Number(row?.usd ?? 0);
  }
}
