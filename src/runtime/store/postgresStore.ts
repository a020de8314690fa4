import { StoreError } from '../errors';
import { runIdPrefix } from '../ids';
import { BudgetExceededError, exceeded, type Amounts, type BudgetLimits } from '../budget/budget';
import type { FailedAttempt } from '../effects/retry';
import {
  UnfinishedSubRunError,
  type ApprovalKind,
  type ApprovalRecord,
  type ApprovalStatus,
  type BudgetRecord,
  type Decision,
  type DecisionMeta,
  type EffectRecord,
  type NewApproval,
  type NewReservation,
  type NewRun,
  type ReservationRecord,
  type RunEnd,
  type RunRecord,
  type RunState,
  type StepRecord,
  type StepTransition,
} from './checkpointStore';
import { POSTGRES_MIGRATIONS, type PostgresMigration, type SqlSession } from './postgresMigrations';
import type { MemoryCapableStore } from '../memory/memoryCapable';
import type { MemoryRowUpgrade } from '../memory/memoryStore';
import { connect, sentence, type Connection, type PostgresTarget } from './postgresConnection';
import { PostgresMemoryStore } from './postgresMemory';
import { PostgresThreadStore } from './postgresThreads';
import { postgresBreakerTally } from './breakerTally';
import type { BreakerTally, BreakerUpdate } from '../effects/circuitBreaker';
import { PostgresAlertOutbox } from './postgresAlerts';
import { PostgresReviewStore } from './postgresReviews';
import type { AlertCapableStore } from '../alerts/outbox';
import type { ReviewCapableStore } from '../review/reviewStore';
import { toApproval, toBudget, toEffect, toReservation, toRun, toStep, type ApprovalRow, type BudgetRow, type EffectRow, type ReservationRow, type RunRow, type StepRow } from './storeRows';

export { POSTGRES_MIGRATIONS } from './postgresMigrations';
export type { PostgresTarget, SqlPool } from './postgresConnection';
export type { PostgresMigration, SqlSession } from './postgresMigrations';

/** The application `keel_schema` names in Keel's databases. */
const KEEL_APPLICATION = 'keel';
/** The advisory lock migrations take, so two processes never migrate at once: "KEEL" in ASCII. */
const MIGRATION_LOCK = 0x4b45454c;

export interface PostgresStoreOptions {
  /** Defaults to Keel's own migrations; tests pass longer lists to exercise upgrades. */
  readonly migrations?: readonly PostgresMigration[];
  /** The most connections the pool Keel opens for a connection string may hold (default 10). */
  readonly maxConnections?: number;
  /** Upgrades of stored memory values; tests pass longer lists to exercise newer formats. */
  readonly memoryRowUpgrades?: readonly MemoryRowUpgrade[];
}

/**
 * Opens (creating and migrating as needed) a Keel database in PostgreSQL, in the connection's
 * current schema (the first of its `search_path`). Throws a StoreError with one sentence, having
 * changed nothing, when the server cannot be reached or the schema is not Keel's or is newer.
 */
export async function openPostgresStore(target: PostgresTarget, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const migrations = options.migrations ?? POSTGRES_MIGRATIONS;
  const connection = await connect(target, options);
  try {
    await migrate(connection, migrations.length, migrations);
  } catch (error) {
    await connection.close().catch(() => undefined);
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Keel cannot set up its tables in ${connection.location}: ${sentence(error)}`, { cause: error });
  }
  return new PostgresStore(connection, options.memoryRowUpgrades);
}

/** What `keel_schema` says, or that there is none: the facts that decide whether Keel may use the schema. */
interface SchemaFacts {
  readonly schema: string;
  readonly application: string | null;
  readonly version: number;
  /** Tables, views and the like in the schema, `keel_schema` included. */
  readonly relations: number;
}

async function readSchema(db: SqlSession, location: string): Promise<SchemaFacts> {
  const { rows } = await db.query(
    `SELECT n.nspname AS schema,
            (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))::int AS relations,
            EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'keel_schema' AND c.relkind = 'r') AS marked
     FROM pg_namespace n WHERE n.nspname = current_schema()`,
  );
  const found = rows[0] as { schema: string; relations: number; marked: boolean } | undefined;
  if (!found) {
    throw new StoreError(
      `Keel has no schema to use in ${location}: none of the schemas on its search_path exists; create one or set search_path (options=-c search_path=…).`,
    );
  }
  if (!found.marked) return { schema: found.schema, application: null, version: 0, relations: found.relations };
  const marks = (await db.query(`SELECT application, version FROM ${quoteIdentifier(found.schema)}.keel_schema`)).rows as {
    application: string;
    version: number;
  }[];
  const mark = marks.length === 1 ? marks[0]! : { application: '', version: 0 };
  return { schema: found.schema, application: mark.application, version: mark.version, relations: found.relations };
}

/** Throws a StoreError, without writing anything, when the schema is not Keel's or is from a newer Keel. */
function checkCompatible(facts: SchemaFacts, location: string, latest: number): void {
  const foreign = facts.application === null ? facts.relations > 0 : facts.application !== KEEL_APPLICATION;
  if (foreign) {
    throw new StoreError(
      `${location} holds tables that Keel did not create in schema "${facts.schema}"; point Keel at an empty database or schema ` +
        '(keel.databasePath, --db or KEEL_DB); it has not been changed.',
    );
  }
  if (facts.version > latest) {
    throw new StoreError(
      `${location} was written by a newer Keel (schema version ${facts.version}; this Keel understands up to ${latest}). ` +
        'Upgrade keel-agents to open it; it has not been changed.',
    );
  }
}

async function migrate(connection: Connection, latest: number, migrations: readonly PostgresMigration[]): Promise<void> {
  const isCurrent = (facts: SchemaFacts) => facts.application === KEEL_APPLICATION && facts.version === latest;
  // A schema that is already current is not written to: opening it to read changes nothing.
  const first = await connection.read((db) => readSchema(db, connection.location));
  checkCompatible(first, connection.location, latest);
  if (isCurrent(first)) return;
  await connection.transaction(async (db) => {
    await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    // Checked again under the lock: another process may have set the schema up meanwhile.
    const found = await readSchema(db, connection.location);
    checkCompatible(found, connection.location, latest);
    if (isCurrent(found)) return;
    for (const migration of migrations.slice(found.version)) await migration.up(db);
    await db.query('UPDATE keel_schema SET version = $1', [latest]);
  });
}

export class PostgresStore implements MemoryCapableStore, AlertCapableStore, ReviewCapableStore {
  readonly location: string;
  readonly memory: PostgresMemoryStore;
  readonly threads: PostgresThreadStore;
  readonly alerts: PostgresAlertOutbox;
  readonly reviews: PostgresReviewStore;

  constructor(
    private readonly connection: Connection,
    memoryRowUpgrades?: readonly MemoryRowUpgrade[],
  ) {
    this.location = connection.location;
    this.memory = new PostgresMemoryStore(connection, memoryRowUpgrades);
    this.threads = new PostgresThreadStore(connection);
    this.alerts = new PostgresAlertOutbox(connection);
    this.reviews = new PostgresReviewStore(connection);
  }

  async createRun(run: NewRun): Promise<RunRecord> {
    const rows = await this.connection.query(
        `INSERT INTO runs (id, agent, agent_file, model, input, state, trace_id, owner, created_at, updated_at,
                           budget, parent_run_id, parent_seq, agent_facts, thread_id, task_id)
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $8, $9, $10, $11, $12, $13, $14)
         RETURNING *`,
        [
          run.id,
          run.agent,
          run.agentFile,
          run.model,
          run.input,
          run.traceId,
          run.owner,
          run.createdAt,
          run.budget === undefined ? null : JSON.stringify(run.budget),
          run.parentRunId ?? null,
          run.parentSeq ?? null,
          run.agentFacts === undefined ? null : JSON.stringify(run.agentFacts),
          run.threadId ?? null,
          run.taskId ?? null,
        ],
      );
    return this.requireRun(run.id, rows);
  }

  /**
   * One transaction: the reservation to close, the reservation to make (all or nothing, throwing
   * BudgetExceededError), the step that ended and the step that begins. Budget rows are locked
   * (SELECT … FOR UPDATE, in id order) before they are read, so reservations made at once by many
   * processes are checked one after the other against what the others hold.
   */
  transition(change: StepTransition): Promise<void> {
    return this.connection.transaction(async (db) => {
      const { end, begin, close, reserve } = change;
      // Commits normally follow the server's synchronous_commit; this one reaches the disk before a side effect starts.
      if (change.durable) await db.query('SET LOCAL synchronous_commit = on');
      const closing = close ? await lockReservations(db, 'id = $1', [close.id]) : [];
      await lockBudgets(db, [...closing.flatMap((row) => budgetIdsOf(row)), ...(reserve?.budgetIds ?? [])]);
      if (close) await closeReservation(db, closing[0], close.actual, close.at);
      if (reserve) await reserveOn(db, reserve);
      if (end) {
        const output = end.output === undefined ? null : JSON.stringify(end.output);
        const costUsd = end.costUsd ?? null;
        await db.query(
          `UPDATE steps SET status = $3, output = $4, error = $5, ended_at = $6, cost_usd = $7
           WHERE run_id = $1 AND seq = $2`,
          [end.runId, end.seq, end.status, output, end.error, end.endedAt, costUsd],
        );
        if (end.effectKey !== undefined) {
          await db.query('UPDATE effects SET status = $2, result = $3, error = $4, ended_at = $5 WHERE key = $1', [
            end.effectKey,
            end.status,
            output,
            end.error,
            end.endedAt,
          ]);
        }
        await db.query(
          `UPDATE runs SET step_count = step_count + 1, input_tokens = input_tokens + $2, output_tokens = output_tokens + $3,
           cost_usd = cost_usd + $4, cost_known = cost_known AND $5, updated_at = $6 WHERE id = $1`,
          [end.runId, end.usage.inputTokens, end.usage.outputTokens, costUsd ?? 0, end.costUsd !== null, end.endedAt],
        );
      }
      if (begin) {
        await db.query(
          `INSERT INTO steps (run_id, seq, kind, name, status, input, idempotency_key, started_at)
           VALUES ($1, $2, $3, $4, 'in_progress', $5, $6, $7)`,
          [begin.runId, begin.seq, begin.kind, begin.name, JSON.stringify(begin.input), begin.idempotencyKey, begin.startedAt],
        );
        if (begin.effect) {
          await db.query(
            `INSERT INTO effects (key, run_id, seq, tool, effect, args_hash, status, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'started', $7)`,
            [begin.effect.key, begin.runId, begin.seq, begin.effect.tool, begin.effect.effect, begin.effect.argsHash, begin.startedAt],
          );
        }
        if (!end) await db.query('UPDATE runs SET updated_at = $2 WHERE id = $1', [begin.runId, begin.startedAt]);
      }
    });
  }

  restartStep(runId: string, seq: number, startedAt: number, interruption: FailedAttempt): Promise<void> {
    return this.connection.transaction(async (db) => {
      // Appends to the JSON array Keel wrote (never empty of brackets), keeping the text as it was.
      await db.query(
        `UPDATE steps SET attempts = attempts + 1, started_at = $3,
         attempt_log = CASE WHEN attempt_log = '[]' THEN '[' || $4 || ']' ELSE left(attempt_log, -1) || ',' || $4 || ']' END
         WHERE run_id = $1 AND seq = $2 AND status = 'in_progress'`,
        [runId, seq, startedAt, JSON.stringify(interruption)],
      );
      await db.query('UPDATE effects SET attempts = attempts + 1 WHERE run_id = $1 AND seq = $2', [runId, seq]);
    });
  }

  recordFailedAttempts(runId: string, seq: number, failures: readonly FailedAttempt[], effectKey?: string): Promise<void> {
    return this.connection.transaction(async (db) => {
      await db.query('UPDATE steps SET attempts = $3, attempt_log = $4 WHERE run_id = $1 AND seq = $2', [
        runId,
        seq,
        failures.length + 1,
        JSON.stringify(failures),
      ]);
      if (effectKey !== undefined) await db.query('UPDATE effects SET attempts = $2 WHERE key = $1', [effectKey, failures.length + 1]);
    });
  }

  async claimEffect(key: string, attempt: number): Promise<boolean> {
    const claimed = await this.connection.query(
      'UPDATE effects SET claimed_attempt = $2 WHERE key = $1 AND claimed_attempt < $2 RETURNING key',
      [key, attempt],
    );
    if (claimed.length === 1) return true;
    return (await this.connection.query('SELECT key FROM effects WHERE key = $1', [key])).length === 0;
  }

  async finishRun(end: RunEnd): Promise<RunRecord> {
    // One statement: a run completes only while no sub-agent run under it is unfinished.
    const rows = await this.connection.query(
      `UPDATE runs SET state = $2, result = $3, error = $4, ended_at = $5, updated_at = $6, active_ms = active_ms + $7
       WHERE id = $1 AND NOT ($2 = 'completed' AND EXISTS (
         SELECT 1 FROM runs child WHERE child.parent_run_id = $1 AND child.state NOT IN ('completed', 'failed', 'cancelled', 'budget_exceeded')))
       RETURNING *`,
      [end.runId, end.state, end.result, end.error, end.endedAt, end.at, Math.max(0, Math.round(end.activeMs ?? 0))],
    );
    if (rows.length === 0 && end.state === 'completed') {
      const open = await this.connection.query(
        `SELECT * FROM runs WHERE parent_run_id = $1 AND state NOT IN ('completed', 'failed', 'cancelled', 'budget_exceeded') ORDER BY created_at, id LIMIT 1`,
        [end.runId],
      );
      if (open[0]) throw new UnfinishedSubRunError(end.runId, toRun(open[0] as RunRow));
    }
    return this.requireRun(end.runId, rows);
  }

  async claimRun(runId: string, owner: string, from: readonly RunState[], at: number): Promise<RunRecord | undefined> {
    const rows = await this.connection.query(
      `UPDATE runs SET state = 'running', owner = $2, error = NULL, updated_at = $4
       WHERE id = $1 AND state = ANY($3::text[]) RETURNING *`,
      [runId, owner, [...from], at],
    );
    return rows.length === 1 ? toRun(rows[0] as RunRow) : undefined;
  }

  raiseRunBudget(runId: string, limits: BudgetLimits, at: number): Promise<RunRecord | undefined> {
    return this.connection.transaction(async (db) => {
      const text = JSON.stringify(limits);
      const raise = "UPDATE runs SET state = 'interrupted', budget = $2, ended_at = NULL, updated_at = $3 WHERE id = $1 AND state = 'budget_exceeded' RETURNING *";
      const { rows } = await db.query(raise, [runId, text, at]);
      if (rows.length !== 1) return undefined;
      await db.query('UPDATE budgets SET limits = $2 WHERE id = $1', [`run:${runId}`, text]);
      return toRun(rows[0] as RunRow);
    });
  }

  async markInterrupted(isOwnerAlive: (owner: string) => boolean, at: number): Promise<RunRecord[]> {
    const running = (await this.connection.query("SELECT id, owner FROM runs WHERE state = 'running'")) as { id: string; owner: string | null }[];
    const gone = running.filter((row) => row.owner === null || !isOwnerAlive(row.owner));
    if (gone.length === 0) return [];
    return this.connection.transaction(async (db) => {
      const marked: RunRecord[] = [];
      for (const row of gone) {
        // Only if it is still running for the same owner: a process may have claimed it meanwhile.
        const { rows } = await db.query(
          `UPDATE runs SET state = 'interrupted', error = $3, updated_at = $4
           WHERE id = $1 AND state = 'running' AND owner IS NOT DISTINCT FROM $2 RETURNING *`,
          [row.id, row.owner, 'The runtime process running it stopped before it finished.', at],
        );
        if (rows.length === 1) marked.push(toRun(rows[0] as RunRow));
      }
      return marked;
    });
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const [row] = await this.connection.query('SELECT * FROM runs WHERE id = $1', [runId]);
    return row === undefined ? undefined : toRun(row as RunRow);
  }

  async listRuns(options: { limit?: number; states?: readonly RunState[] } = {}): Promise<RunRecord[]> {
    const limit = options.limit ?? 100;
    const rows = options.states
      ? await this.connection.query('SELECT * FROM runs WHERE state = ANY($1::text[]) ORDER BY created_at DESC, id DESC LIMIT $2', [
          [...options.states],
          limit,
        ])
      : await this.connection.query('SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT $1', [limit]);
    return (rows as RunRow[]).map(toRun);
  }

  async threadRuns(threadId: string): Promise<RunRecord[]> {
    const rows = await this.connection.query('SELECT * FROM runs WHERE thread_id = $1 ORDER BY ended_at IS NULL, ended_at, created_at, id', [threadId]);
    return (rows as RunRow[]).map(toRun);
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return ((await this.connection.query('SELECT * FROM steps WHERE run_id = $1 ORDER BY seq', [runId])) as StepRow[]).map(toStep);
  }

  async getEffects(runId: string): Promise<EffectRecord[]> {
    return ((await this.connection.query('SELECT * FROM effects WHERE run_id = $1 ORDER BY seq, key', [runId])) as EffectRow[]).map(toEffect);
  }

  async resolveRunId(prefix: string): Promise<string> {
    const wanted = runIdPrefix(prefix);
    const pattern = `${wanted.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = (await this.connection.query(
      "SELECT id FROM runs WHERE id LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT 2",
      [pattern],
    )) as { id: string }[];
    if (rows.length === 0) throw new StoreError(`No run has an id starting with "${prefix}".`);
    if (rows.length > 1 && rows[0]?.id !== wanted) throw new StoreError(`More than one run has an id starting with "${prefix}"; give more of it.`);
    return rows[0]!.id;
  }

  requestApproval(approval: NewApproval): Promise<ApprovalRecord> {
    return this.connection.transaction(async (db) => {
      await db.query(
        `INSERT INTO approvals (id, run_id, seq, kind, agent, tool, args, args_hash, summary, reason, requested_at,
                                deadline, on_expiry, escalate_to, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending')
         ON CONFLICT (run_id, seq, kind) DO NOTHING`,
        [
          approval.id,
          approval.runId,
          approval.seq,
          approval.kind,
          approval.agent,
          approval.tool,
          JSON.stringify(approval.args),
          approval.argsHash,
          approval.summary,
          approval.reason,
          approval.requestedAt,
          approval.deadline,
          approval.onExpiry,
          approval.escalateTo,
        ],
      );
      const { rows } = await db.query('SELECT * FROM approvals WHERE run_id = $1 AND seq = $2 AND kind = $3', [
        approval.runId,
        approval.seq,
        approval.kind,
      ]);
      return toApproval(rows[0] as ApprovalRow);
    });
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const [row] = await this.connection.query('SELECT * FROM approvals WHERE id = $1', [id]);
    return row === undefined ? undefined : toApproval(row as ApprovalRow);
  }

  async findApproval(runId: string, seq: number, kind: ApprovalKind): Promise<ApprovalRecord | undefined> {
    const [row] = await this.connection.query('SELECT * FROM approvals WHERE run_id = $1 AND seq = $2 AND kind = $3', [runId, seq, kind]);
    return row === undefined ? undefined : toApproval(row as ApprovalRow);
  }

  async listApprovals(options: { status?: ApprovalStatus; runId?: string } = {}): Promise<ApprovalRecord[]> {
    const rows = await this.connection.query(
      `SELECT * FROM approvals WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR run_id = $2)
       ORDER BY requested_at, id`,
      [options.status ?? null, options.runId ?? null],
    );
    return (rows as ApprovalRow[]).map(toApproval);
  }

  /** The update and its condition are one statement: of two decisions at once, exactly one finds the approval pending. */
  decideApproval(id: string, decision: Decision, meta: DecisionMeta, expired = false): Promise<ApprovalRecord> {
    return this.connection.transaction(async (db) => {
      const { rows: changed } = await db.query(
        `UPDATE approvals SET status = $2, decision = $3, decided_by = $4, decided_via = $5, decided_at = $6
         WHERE id = $1 AND status = 'pending' RETURNING *`,
        [id, expired ? 'expired' : 'decided', JSON.stringify(decision), meta.by, meta.via, meta.at],
      );
      if (changed.length === 1) return toApproval(changed[0] as ApprovalRow);
      const row = (await db.query('SELECT * FROM approvals WHERE id = $1', [id])).rows[0] as ApprovalRow | undefined;
      if (!row) throw new StoreError(`No approval ${id}.`);
      throw new StoreError(
        row.status === 'expired'
          ? `Approval ${id} expired at its deadline and was rejected; its decision stands.`
          : `Approval ${id} was already decided by ${row.decided_by ?? 'someone'}; its decision stands.`,
      );
    });
  }

  escalateApproval(id: string, at: number, deadline: number): Promise<ApprovalRecord> {
    return this.connection.transaction(async (db) => {
      await db.query(
        `UPDATE approvals SET escalated_at = $2, deadline = $3
         WHERE id = $1 AND status = 'pending' AND escalated_at IS NULL`,
        [id, at, deadline],
      );
      const row = (await db.query('SELECT * FROM approvals WHERE id = $1', [id])).rows[0] as ApprovalRow | undefined;
      if (!row) throw new StoreError(`No approval ${id}.`);
      return toApproval(row);
    });
  }

  async ensureBudget(budget: { id: string; kind: 'run' | 'pool'; limits: BudgetLimits; at: number }): Promise<void> {
    await this.connection.query('INSERT INTO budgets (id, kind, limits, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING', [
      budget.id,
      budget.kind,
      JSON.stringify(budget.limits),
      budget.at,
    ]);
  }

  async getBudgets(ids: readonly string[]): Promise<BudgetRecord[]> {
    if (ids.length === 0) return [];
    const rows = (await this.connection.query('SELECT * FROM budgets WHERE id = ANY($1::text[])', [[...ids]])) as BudgetRow[];
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.flatMap((id) => {
      const row = byId.get(id);
      return row ? [toBudget(row)] : [];
    });
  }

  async listReservations(options: { runId?: string; status?: ReservationRecord['status'] } = {}): Promise<ReservationRecord[]> {
    const rows = await this.connection.query(
      `SELECT * FROM reservations WHERE ($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR status = $2)
       ORDER BY created_at, id`,
      [options.runId ?? null, options.status ?? null],
    );
    return (rows as ReservationRow[]).map(toReservation);
  }

  settleHeld(runId: string, at: number): Promise<ReservationRecord[]> {
    return this.connection.transaction(async (db) => {
      const held = await lockReservations(db, "run_id = $1 AND status = 'held'", [runId]);
      await lockBudgets(db, held.flatMap((row) => budgetIdsOf(row)));
      const settled: ReservationRecord[] = [];
      for (const row of held) {
        const amounts = { inputTokens: Number(row.input_tokens), outputTokens: Number(row.output_tokens), usd: row.usd };
        const closed = await closeReservation(db, row, amounts, at);
        if (closed) settled.push(closed);
      }
      return settled.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  async childRuns(parentRunId: string): Promise<RunRecord[]> {
    const rows = await this.connection.query('SELECT * FROM runs WHERE parent_run_id = $1 ORDER BY created_at, id', [parentRunId]);
    return (rows as RunRow[]).map(toRun);
  }

  tallyBreaker(update: BreakerUpdate): Promise<BreakerTally> {
    return this.connection.transaction((db) => postgresBreakerTally(db, update));
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private requireRun(runId: string, rows: unknown[]): RunRecord {
    const row = rows[0] as RunRow | undefined;
    if (!row) throw new StoreError(`Run ${runId} is not in ${this.location}.`);
    return toRun(row);
  }
}

/** Locks the reservations `where` selects, in id order, and returns them as they are now. */
async function lockReservations(db: SqlSession, where: string, values: unknown[]): Promise<ReservationRow[]> {
  return (await db.query(`SELECT * FROM reservations WHERE ${where} ORDER BY id FOR UPDATE`, values)).rows as ReservationRow[];
}

/**
 * Locks budget rows in one order (by id) for the rest of the transaction, so that transactions
 * touching the same budgets wait for each other instead of deadlocking.
 */
async function lockBudgets(db: SqlSession, ids: readonly string[]): Promise<void> {
  const unique = [...new Set(ids)];
  if (unique.length > 0) await db.query('SELECT id FROM budgets WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [unique]);
}

function budgetIdsOf(row: ReservationRow): string[] {
  return row.status === 'held' ? (JSON.parse(row.budget_ids) as string[]) : [];
}

/** Holds a reservation's amounts on each of its budgets, or throws (inside the transaction) if one would go over. */
async function reserveOn(db: SqlSession, reservation: NewReservation): Promise<void> {
  const { amounts } = reservation;
  const rows = (await db.query('SELECT * FROM budgets WHERE id = ANY($1::text[])', [[...reservation.budgetIds]])).rows as BudgetRow[];
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const id of reservation.budgetIds) {
    const row = byId.get(id);
    if (!row) throw new StoreError(`Budget ${id} does not exist.`);
    const over = exceeded(toBudget(row), amounts);
    if (over) throw new BudgetExceededError(over.message, id, over.dimension);
  }
  for (const id of reservation.budgetIds) {
    await db.query(
      `UPDATE budgets SET reserved_input = reserved_input + $2, reserved_output = reserved_output + $3, reserved_usd = reserved_usd + $4
       WHERE id = $1`,
      [id, amounts.inputTokens, amounts.outputTokens, amounts.usd],
    );
  }
  await db.query(
    `INSERT INTO reservations (id, run_id, seq, model, budget_ids, input_tokens, output_tokens, usd, status, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9)`,
    [
      reservation.id,
      reservation.runId,
      reservation.seq,
      reservation.model,
      JSON.stringify(reservation.budgetIds),
      amounts.inputTokens,
      amounts.outputTokens,
      amounts.usd,
      reservation.at,
    ],
  );
}

/**
 * Settles a held reservation (locked by the caller) at `actual`, or releases it when there is
 * none, on each of its budgets.
 */
async function closeReservation(
  db: SqlSession,
  row: ReservationRow | undefined,
  actual: Amounts | undefined,
  at: number,
): Promise<ReservationRecord | undefined> {
  if (!row || row.status !== 'held') return undefined;
  const spent = actual ?? { inputTokens: 0, outputTokens: 0, usd: 0 };
  for (const budgetId of JSON.parse(row.budget_ids) as string[]) {
    await db.query(
      `UPDATE budgets SET reserved_input = reserved_input - $2, reserved_output = reserved_output - $3, reserved_usd = reserved_usd - $4,
       spent_input = spent_input + $5, spent_output = spent_output + $6, spent_usd = spent_usd + $7 WHERE id = $1`,
      [budgetId, row.input_tokens, row.output_tokens, row.usd, spent.inputTokens, spent.outputTokens, spent.usd],
    );
  }
  const { rows } = await db.query(
    `UPDATE reservations SET status = $2, actual_input = $3, actual_output = $4, actual_usd = $5, closed_at = $6
     WHERE id = $1 AND status = 'held' RETURNING *`,
    [row.id, actual ? 'settled' : 'released', actual?.inputTokens ?? null, actual?.outputTokens ?? null, actual?.usd ?? null, at],
  );
  return rows[0] === undefined ? undefined : toReservation(rows[0] as ReservationRow);
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
