import type Database from 'better-sqlite3';
import { alertId, type AlertOutbox, type AlertRecord, type ClaimedDelivery, type DeliveryOutcome, type DeliveryStatus, type NewAlert, type SpendScope } from '../alerts/outbox';
import { leaseFree, settledColumns, spendQuery, toAlert, type AlertRow, type DeliveryRow } from './alertRows';

/** The alert outbox in the run database (SQLite migration 9). */
export class SqliteAlertOutbox implements AlertOutbox {
  private readonly statements;
  private readonly insert;
  private readonly take;
  private readonly spendStatements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    this.statements = {
      byKey: db.prepare('SELECT id FROM alerts WHERE key = ?'),
      recent: db.prepare('SELECT id FROM alerts WHERE dedup_key = ? AND created_at > ? AND created_at <= ? ORDER BY created_at DESC LIMIT 1'),
      repeat: db.prepare('UPDATE alerts SET repeats = repeats + 1 WHERE id = ?'),
      insertAlert: db.prepare(
        `INSERT INTO alerts (id, key, dedup_key, event, severity, title, body, run_id, facts, created_at)
         VALUES (@id, @key, @dedupKey, @event, @severity, @title, @body, @runId, @facts, @at)`,
      ),
      insertDelivery: db.prepare(
        `INSERT INTO alert_deliveries (alert_id, target, status, next_attempt_at) VALUES (?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
      ),
      alert: db.prepare('SELECT * FROM alerts WHERE id = ?'),
      deliveriesOf: db.prepare('SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY target'),
      due: db.prepare(`SELECT * FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, alert_id LIMIT ?`),
      lease: db.prepare(
        `UPDATE alert_deliveries SET lease_owner = @owner, lease_until = @until, attempts = attempts + 1
         WHERE alert_id = @alertId AND target = @target AND status = 'pending'
           AND lease_owner IS @previousOwner AND lease_until IS @previousUntil`,
      ),
      settle: db.prepare(
        `UPDATE alert_deliveries SET status = @status, sent_at = @sentAt, last_error = @error, next_attempt_at = @next,
                lease_owner = NULL, lease_until = NULL
         WHERE alert_id = @alertId AND target = @target AND status = 'pending' AND lease_owner = @owner`,
      ),
      list: db.prepare('SELECT * FROM alerts ORDER BY created_at DESC, id DESC LIMIT ?'),
      listWith: db.prepare(
        `SELECT * FROM alerts a WHERE EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.status = ?)
         ORDER BY created_at DESC, id DESC LIMIT ?`,
      ),
    };
    this.insert = db.transaction((alert: NewAlert, targets: readonly string[], window: number): string | undefined => {
      const id = alertId(alert.key);
      if (this.statements.byKey.get(alert.key)) return undefined;
      const earlier = this.statements.recent.get(alert.dedupKey, alert.at - window, alert.at) as { id: string } | undefined;
      if (earlier) {
        this.statements.repeat.run(earlier.id);
        return undefined;
      }
      this.statements.insertAlert.run({ ...alert, id, facts: JSON.stringify(alert.facts) });
      for (const target of targets) this.statements.insertDelivery.run(id, target, alert.at);
      return id;
    });
    this.take = db.transaction((rows: readonly DeliveryRow[], owner: string, until: number): DeliveryRow[] =>
      rows.filter(
        (row) =>
          this.statements.lease.run({ alertId: row.alert_id, target: row.target, owner, until, previousOwner: row.lease_owner, previousUntil: row.lease_until })
            .changes === 1,
      ),
    );
  }

  async enqueue(alert: NewAlert, targets: readonly string[], dedupWindowMs: number): Promise<AlertRecord | undefined> {
    const id = this.insert.immediate(alert, targets, dedupWindowMs);
    return id === undefined ? undefined : this.getAlert(id);
  }

  async claim(options: Parameters<AlertOutbox['claim']>[0]): Promise<ClaimedDelivery[]> {
    const candidates = (this.statements.due.all(options.now, options.limit * 4) as DeliveryRow[])
      .filter((row) => options.targets(row.target) && leaseFree(row, options.now, options.isOwnerAlive))
      .slice(0, options.limit);
    const taken = this.take.immediate(candidates, options.owner, options.now + options.leaseMs);
    const claimed: ClaimedDelivery[] = [];
    for (const row of taken) {
      const alert = await this.getAlert(row.alert_id);
      const delivery = alert?.deliveries.find((candidate) => candidate.target === row.target);
      if (alert && delivery) claimed.push({ alert, delivery });
    }
    return claimed;
  }

  async settle(alertIdToSettle: string, target: string, owner: string, outcome: DeliveryOutcome): Promise<boolean> {
    return this.statements.settle.run({ alertId: alertIdToSettle, target, owner, ...settledColumns(outcome) }).changes === 1;
  }

  async getAlert(id: string): Promise<AlertRecord | undefined> {
    const row = this.statements.alert.get(id) as AlertRow | undefined;
    return row && toAlert(row, this.statements.deliveriesOf.all(id) as DeliveryRow[]);
  }

  async list(options: { readonly status?: DeliveryStatus; readonly limit?: number } = {}): Promise<AlertRecord[]> {
    const limit = options.limit ?? 50;
    const rows = (options.status ? this.statements.listWith.all(options.status, limit) : this.statements.list.all(limit)) as AlertRow[];
    return rows.map((row) => toAlert(row, this.statements.deliveriesOf.all(row.id) as DeliveryRow[]));
  }

  async spend(scope: SpendScope, since: number, until: number): Promise<number> {
    const { sql, value } = spendQuery(scope);
    let statement = this.spendStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.spendStatements.set(sql, statement);
    }
    const row = statement.get(...[since, until, ...(value === undefined ? [] : [value])]) as { usd: number };
    return row.usd;
  }
}
