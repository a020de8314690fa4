import type Database from 'better-sqlite3';
import type { BreakerTally, BreakerUpdate } from '../effects/circuitBreaker';
import type { SqlSession } from './postgresMigrations';

/**
 * Circuit breakers' shared counts (migration `breaker_buckets`, `breakers`), for SQLite and
 * PostgreSQL alike: one bucket row per dependency and window slice, and one row per circuit with
 * when it is open until and from when its calls count (an open or a closed circuit counts afresh).
 */

interface BreakerRow {
  readonly open_until: number | string | null;
  readonly reason: string | null;
  readonly counts_from: number | string;
}

interface SumsRow {
  readonly successes: number | string | null;
  readonly failures: number | string | null;
}

/** The statements in order, with `?` placeholders numbered for PostgreSQL by `numbered`. */
const SQL = {
  open: `INSERT INTO breakers (name, open_until, reason, counts_from) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET open_until = excluded.open_until, reason = excluded.reason, counts_from = excluded.counts_from`,
  close: `INSERT INTO breakers (name, open_until, counts_from) VALUES (?, NULL, ?)
          ON CONFLICT (name) DO UPDATE SET open_until = NULL, counts_from = excluded.counts_from`,
  add: `INSERT INTO breaker_buckets (name, bucket, successes, failures) VALUES (?, ?, ?, ?)
        ON CONFLICT (name, bucket) DO UPDATE SET successes = breaker_buckets.successes + excluded.successes,
        failures = breaker_buckets.failures + excluded.failures`,
  forget: 'DELETE FROM breaker_buckets WHERE name = ? AND bucket < ?',
  state: 'SELECT open_until, reason, counts_from FROM breakers WHERE name = ?',
  sums: 'SELECT sum(successes) AS successes, sum(failures) AS failures FROM breaker_buckets WHERE name = ? AND bucket >= ?',
} as const;

function numbered(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
}

function tallyOf(state: BreakerRow | undefined, sums: SumsRow | undefined): BreakerTally {
  return {
    successes: Number(sums?.successes ?? 0),
    failures: Number(sums?.failures ?? 0),
    openUntil: state?.open_until === null || state?.open_until === undefined ? null : Number(state.open_until),
    reason: state?.reason ?? null,
  };
}

/** The window starts at `since`, or later where the circuit last opened or closed. */
function windowStart(update: BreakerUpdate, state: BreakerRow | undefined): number {
  return Math.max(update.since, Number(state?.counts_from ?? 0));
}

/** The tally in SQLite, as one synchronous transaction (better-sqlite3 prepares each statement once), to be run `.immediate`. */
export function sqliteBreakerTally(db: Database.Database): Database.Transaction<(update: BreakerUpdate) => BreakerTally> {
  const statements = Object.fromEntries(Object.entries(SQL).map(([key, sql]) => [key, db.prepare(sql)])) as Record<keyof typeof SQL, Database.Statement>;
  return db.transaction((update: BreakerUpdate): BreakerTally => {
    if (update.openUntil !== undefined) statements.open.run(update.name, update.openUntil, update.reason ?? null, update.at);
    else if (update.close) statements.close.run(update.name, update.at);
    if (update.successes > 0 || update.failures > 0) statements.add.run(update.name, update.bucket, update.successes, update.failures);
    statements.forget.run(update.name, update.since - (update.at - update.since));
    const state = statements.state.get(update.name) as BreakerRow | undefined;
    return tallyOf(state, statements.sums.get(update.name, windowStart(update, state)) as SumsRow | undefined);
  });
}

/** The tally in PostgreSQL, in one transaction of the connection's. */
export async function postgresBreakerTally(db: SqlSession, update: BreakerUpdate): Promise<BreakerTally> {
  const query = async (sql: string, values: unknown[]) => (await db.query(numbered(sql), values)).rows as unknown[];
  if (update.openUntil !== undefined) await query(SQL.open, [update.name, update.openUntil, update.reason ?? null, update.at]);
  else if (update.close) await query(SQL.close, [update.name, update.at]);
  if (update.successes > 0 || update.failures > 0) await query(SQL.add, [update.name, update.bucket, update.successes, update.failures]);
  await query(SQL.forget, [update.name, update.since - (update.at - update.since)]);
  const [state] = (await query(SQL.state, [update.name])) as BreakerRow[];
  const [sums] = (await query(SQL.sums, [update.name, windowStart(update, state)])) as SumsRow[];
  return tallyOf(state, sums);
}
