import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError, describeError } from '../errors';
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
import { SQLITE_MIGRATIONS, type Migration } from './sqliteMigrations';
import { checkCompatible, checkIntact, migrate } from './sqliteSchema';
import type { MemoryCapableStore } from '../memory/memoryCapable';
import type { MemoryRowUpgrade } from '../memory/memoryStore';
import { SqliteMemoryStore } from './sqliteMemory';
import { SqliteThreadStore } from './sqliteThreads';
import { sqliteBreakerTally } from './breakerTally';
import { beginSession, checkReason, readSessions, type CheckReason, type SessionsState, type SqliteSession } from './sqliteSessions';
import type { BreakerTally, BreakerUpdate } from '../effects/circuitBreaker';
import { SqliteAlertOutbox } from './sqliteAlerts';
import { SqliteReviewStore } from './sqliteReviews';
import type { AlertCapableStore } from '../alerts/outbox';
import type { ReviewCapableStore } from '../review/reviewStore';
import { toApproval, toBudget, toEffect, toReservation, toRun, toStep, type ApprovalRow, type BudgetRow, type EffectRow, type ReservationRow, type RunRow, type StepRow } from './storeRows';

export interface SqliteStoreOptions {
  /** Defaults to Keel's own migrations; tests pass longer lists to exercise upgrades. */
  readonly migrations?: readonly Migration[];
  /** `NORMAL` (default) survives a crash of the process; `FULL` also survives a power cut. */
  readonly synchronous?: 'NORMAL' | 'FULL';
  /** Upgrades of stored memory values; tests pass longer lists to exercise newer formats. */
  readonly memoryRowUpgrades?: readonly MemoryRowUpgrade[];
}

/** Opens (creating and migrating as needed) a Keel database file. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  const migrations = options.migrations ?? SQLITE_MIGRATIONS;
  let db: Database.Database;
  // An in-memory database or a temporary one has no file to leave behind damaged.
  const tracked = path !== '' && path !== ':memory:';
  let sessions: SessionsState | undefined;
  let reason: CheckReason = 'it is not a file';
  let session: SqliteSession | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
  } catch (error) {
    throw new StoreError(`Keel cannot open its database ${path}: ${describeError(error)}.`, { cause: error });
  }
  try {
    db.pragma('busy_timeout = 5000');
    // Before anything writes: switching to WAL rewrites the file header, and a database Keel
    // cannot use must be left exactly as it was.
    checkCompatible(db, path, migrations.length);
    // The whole file is read only when something says it could be damaged (see sqliteSessions.ts).
    if (tracked) {
      sessions = readSessions(path);
      reason = checkReason(path, sessions);
    }
    if (reason !== undefined) checkIntact(db);
    // Said before anything writes, so a process that dies from here on leaves it to be checked.
    session = sessions && beginSession(path, reason !== undefined, sessions);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, path, migrations);
  } catch (error) {
    db.close();
    session?.abandon();
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `Keel cannot read its database ${path} (${describeError(error)}). ` +
        'Move the file aside to start a new one, or restore it from a backup; Keel has not changed it.',
      { cause: error },
    );
  }
  const store = new SqliteStore(db, path, options.synchronous ?? 'NORMAL', options.memoryRowUpgrades, session, tracked ? reason : undefined);
  OPEN_STORES.add(store);
  if (OPEN_STORES.size === 1 && !closingAtExit) {
    closingAtExit = true;
    // A process that ends without closing its stores (a command that returned, an exit call)
    // still leaves their files clean: only a crash or a kill leaves one to be checked.
    process.once('exit', () => {
      for (const open of [...OPEN_STORES]) open.closeNow();
    });
  }
  return store;
}

/** Stores this process has open, closed when it exits. */
const OPEN_STORES = new Set<SqliteStore>();
let closingAtExit = false;

export class SqliteStore implements MemoryCapableStore, AlertCapableStore, ReviewCapableStore {
  private readonly statements;
  private readonly writeTransition;
  private readonly breakerTally;
  readonly memory: SqliteMemoryStore;
  readonly threads: SqliteThreadStore;
  readonly alerts: SqliteAlertOutbox;
  readonly reviews: SqliteReviewStore;

  constructor(
    private readonly db: Database.Database,
    readonly location: string,
    private readonly synchronous: 'NORMAL' | 'FULL',
    memoryRowUpgrades?: readonly MemoryRowUpgrade[],
    private readonly session?: SqliteSession,
    /** Why opening it read the whole file to check it, or undefined when it was left cleanly and not read. */
    readonly checkedBecause?: string,
  ) {
    this.statements = {
      insertRun: db.prepare(
        `INSERT INTO runs (id, agent, agent_file, model, input, state, trace_id, owner, created_at, updated_at,
                           budget, parent_run_id, parent_seq, agent_facts, thread_id, task_id)
         VALUES (@id, @agent, @agentFile, @model, @input, 'running', @traceId, @owner, @createdAt, @createdAt,
                 @budget, @parentRunId, @parentSeq, @agentFacts, @threadId, @taskId)`,
      ),
      threadRuns: db.prepare('SELECT * FROM runs WHERE thread_id = ? ORDER BY ended_at IS NULL, ended_at, created_at, id'),
      childRuns: db.prepare('SELECT * FROM runs WHERE parent_run_id = ? ORDER BY created_at, id'),
      unfinishedChild: db.prepare(
        `SELECT * FROM runs WHERE parent_run_id = ? AND state NOT IN ('completed', 'failed', 'cancelled', 'budget_exceeded')
         ORDER BY created_at, id LIMIT 1`,
      ),
      insertBudget: db.prepare(
        `INSERT INTO budgets (id, kind, limits, created_at) VALUES (@id, @kind, @limits, @at) ON CONFLICT (id) DO NOTHING`,
      ),
      getBudget: db.prepare('SELECT * FROM budgets WHERE id = ?'),
      holdBudget: db.prepare(
        `UPDATE budgets SET reserved_input = reserved_input + @inputTokens, reserved_output = reserved_output + @outputTokens,
         reserved_usd = reserved_usd + @usd WHERE id = @id`,
      ),
      unholdBudget: db.prepare(
        `UPDATE budgets SET reserved_input = reserved_input - @inputTokens, reserved_output = reserved_output - @outputTokens,
         reserved_usd = reserved_usd - @usd, spent_input = spent_input + @spentInput, spent_output = spent_output + @spentOutput,
         spent_usd = spent_usd + @spentUsd WHERE id = @id`,
      ),
      insertReservation: db.prepare(
        `INSERT INTO reservations (id, run_id, seq, model, budget_ids, input_tokens, output_tokens, usd, status, created_at)
         VALUES (@id, @runId, @seq, @model, @budgetIds, @inputTokens, @outputTokens, @usd, 'held', @at)`,
      ),
      getReservation: db.prepare('SELECT * FROM reservations WHERE id = ?'),
      closeReservation: db.prepare(
        `UPDATE reservations SET status = @status, actual_input = @actualInput, actual_output = @actualOutput,
         actual_usd = @actualUsd, closed_at = @at WHERE id = @id AND status = 'held'`,
      ),
      listReservations: db.prepare(
        `SELECT * FROM reservations WHERE (@runId IS NULL OR run_id = @runId) AND (@status IS NULL OR status = @status)
         ORDER BY created_at, id`,
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      listRuns: db.prepare('SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT ?'),
      listRunsInStates: db.prepare(
        'SELECT * FROM runs WHERE state IN (SELECT value FROM json_each(?)) ORDER BY created_at DESC, id DESC LIMIT ?',
      ),
      findRuns: db.prepare("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 2"),
      insertStep: db.prepare(
        `INSERT INTO steps (run_id, seq, kind, name, status, input, idempotency_key, started_at)
         VALUES (@runId, @seq, @kind, @name, 'in_progress', @input, @idempotencyKey, @startedAt)`,
      ),
      insertEffect: db.prepare(
        `INSERT INTO effects (key, run_id, seq, tool, effect, args_hash, status, started_at)
         VALUES (@key, @runId, @seq, @tool, @effect, @argsHash, 'started', @startedAt)`,
      ),
      touchRun: db.prepare('UPDATE runs SET updated_at = ? WHERE id = ?'),
      endStep: db.prepare(
        `UPDATE steps SET status = @status, output = @output, error = @error, ended_at = @endedAt, cost_usd = @costUsd
         WHERE run_id = @runId AND seq = @seq`,
      ),
      endEffect: db.prepare(
        'UPDATE effects SET status = @status, result = @output, error = @error, ended_at = @endedAt WHERE key = @effectKey',
      ),
      countStep: db.prepare(
        `UPDATE runs SET step_count = step_count + 1, input_tokens = input_tokens + @inputTokens,
         output_tokens = output_tokens + @outputTokens, cost_usd = cost_usd + @cost,
         cost_known = cost_known AND @costKnown, updated_at = @endedAt WHERE id = @runId`,
      ),
      restartStep: db.prepare(
        `UPDATE steps SET attempts = attempts + 1, started_at = @startedAt,
         attempt_log = json_insert(attempt_log, '$[#]', json(@interruption))
         WHERE run_id = @runId AND seq = @seq AND status = 'in_progress'`,
      ),
      restartEffect: db.prepare(
        `UPDATE effects SET attempts = attempts + 1 WHERE run_id = @runId AND seq = @seq`,
      ),
      recordAttempts: db.prepare(
        `UPDATE steps SET attempts = json_array_length(@log) + 1, attempt_log = @log
         WHERE run_id = @runId AND seq = @seq`,
      ),
      recordEffectAttempts: db.prepare('UPDATE effects SET attempts = @attempts WHERE key = @effectKey'),
      claimEffect: db.prepare('UPDATE effects SET claimed_attempt = @attempt WHERE key = @key AND claimed_attempt < @attempt'),
      effectExists: db.prepare('SELECT 1 FROM effects WHERE key = ?'),
      getSteps: db.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY seq'),
      getEffects: db.prepare('SELECT * FROM effects WHERE run_id = ? ORDER BY seq'),
      finishRun: db.prepare(
        `UPDATE runs SET state = @state, result = @result, error = @error, ended_at = @endedAt, updated_at = @at,
         active_ms = active_ms + @activeMs WHERE id = @runId`,
      ),
      claimRun: db.prepare(
        `UPDATE runs SET state = 'running', owner = @owner, error = NULL, updated_at = @at
         WHERE id = @runId AND state IN (SELECT value FROM json_each(@from))`,
      ),
      raiseRunBudget: db.prepare(
        `UPDATE runs SET state = 'interrupted', budget = @limits, ended_at = NULL, updated_at = @at
         WHERE id = @runId AND state = 'budget_exceeded'`,
      ),
      setBudgetLimits: db.prepare('UPDATE budgets SET limits = @limits WHERE id = @id'),
      runningRuns: db.prepare("SELECT * FROM runs WHERE state = 'running'"),
      interrupt: db.prepare(
        `UPDATE runs SET state = 'interrupted', error = @error, updated_at = @at
         WHERE id = @id AND state = 'running' AND owner IS @owner`,
      ),
      insertApproval: db.prepare(
        `INSERT INTO approvals (id, run_id, seq, kind, agent, tool, args, args_hash, summary, reason, requested_at,
                                deadline, on_expiry, escalate_to, status)
         VALUES (@id, @runId, @seq, @kind, @agent, @tool, @args, @argsHash, @summary, @reason, @requestedAt,
                 @deadline, @onExpiry, @escalateTo, 'pending')
         ON CONFLICT (run_id, seq, kind) DO NOTHING`,
      ),
      getApproval: db.prepare('SELECT * FROM approvals WHERE id = ?'),
      findApproval: db.prepare('SELECT * FROM approvals WHERE run_id = ? AND seq = ? AND kind = ?'),
      listApprovals: db.prepare(
        `SELECT * FROM approvals WHERE (@status IS NULL OR status = @status) AND (@runId IS NULL OR run_id = @runId)
         ORDER BY requested_at, id`,
      ),
      decideApproval: db.prepare(
        `UPDATE approvals SET status = @status, decision = @decision, decided_by = @by, decided_via = @via, decided_at = @at
         WHERE id = @id AND status = 'pending'`,
      ),
      escalateApproval: db.prepare(
        `UPDATE approvals SET escalated_at = @at, deadline = @deadline
         WHERE id = @id AND status = 'pending' AND escalated_at IS NULL`,
      ),
    };
    // After the run statements: a database of an older schema fails on those first, as it always has.
    this.memory = new SqliteMemoryStore(db, memoryRowUpgrades);
    this.threads = new SqliteThreadStore(db);
    this.breakerTally = sqliteBreakerTally(db);
    this.alerts = new SqliteAlertOutbox(db);
    this.reviews = new SqliteReviewStore(db);
    this.writeTransition = db.transaction((change: StepTransition) => {
      const { end, begin, close, reserve } = change;
      if (close) this.closeReservation(close.id, close.actual, close.at);
      if (reserve) this.reserve(reserve);
      if (end) {
        const output = end.output === undefined ? null : JSON.stringify(end.output);
        const costUsd = end.costUsd ?? null;
        this.statements.endStep.run({ ...end, output, costUsd });
        if (end.effectKey !== undefined) this.statements.endEffect.run({ ...end, output, effectKey: end.effectKey });
        this.statements.countStep.run({
          ...end.usage,
          cost: costUsd ?? 0,
          costKnown: end.costUsd === null ? 0 : 1,
          endedAt: end.endedAt,
          runId: end.runId,
        });
      }
      if (begin) {
        this.statements.insertStep.run({ ...begin, input: JSON.stringify(begin.input), effect: undefined });
        if (begin.effect) {
          this.statements.insertEffect.run({ ...begin.effect, runId: begin.runId, seq: begin.seq, startedAt: begin.startedAt });
        }
        if (!end) this.statements.touchRun.run(begin.startedAt, begin.runId);
      }
    });
  }

  /** Holds a reservation's amounts on each of its budgets, or throws (inside the transaction) if one would go over. */
  private reserve(reservation: NewReservation): void {
    const { amounts } = reservation;
    for (const id of reservation.budgetIds) {
      const row = this.statements.getBudget.get(id) as BudgetRow | undefined;
      if (!row) throw new StoreError(`Budget ${id} does not exist.`);
      const budget = toBudget(row);
      const over = exceeded(budget, amounts);
      if (over) throw new BudgetExceededError(over.message, id, over.dimension);
    }
    for (const id of reservation.budgetIds) this.statements.holdBudget.run({ id, ...amounts });
    this.statements.insertReservation.run({ ...reservation, ...amounts, budgetIds: JSON.stringify(reservation.budgetIds) });
  }

  /** Settles a held reservation at `actual` (or releases it when there is none), on each of its budgets. */
  private closeReservation(id: string, actual: Amounts | undefined, at: number): ReservationRecord | undefined {
    const row = this.statements.getReservation.get(id) as ReservationRow | undefined;
    if (!row || row.status !== 'held') return undefined;
    const spent = actual ?? { inputTokens: 0, outputTokens: 0, usd: 0 };
    for (const budgetId of JSON.parse(row.budget_ids) as string[]) {
      this.statements.unholdBudget.run({
        id: budgetId,
        inputTokens: row.input_tokens,
        outputTokens: row.output_tokens,
        usd: row.usd,
        spentInput: spent.inputTokens,
        spentOutput: spent.outputTokens,
        spentUsd: spent.usd,
      });
    }
    this.statements.closeReservation.run({
      id,
      status: actual ? 'settled' : 'released',
      actualInput: actual?.inputTokens ?? null,
      actualOutput: actual?.outputTokens ?? null,
      actualUsd: actual?.usd ?? null,
      at,
    });
    return toReservation(this.statements.getReservation.get(id) as ReservationRow);
  }

  createRun(run: NewRun): Promise<RunRecord> {
    this.statements.insertRun.run({
      ...run,
      budget: run.budget === undefined ? null : JSON.stringify(run.budget),
      parentRunId: run.parentRunId ?? null,
      parentSeq: run.parentSeq ?? null,
      agentFacts: run.agentFacts === undefined ? null : JSON.stringify(run.agentFacts),
      threadId: run.threadId ?? null,
      taskId: run.taskId ?? null,
    });
    return Promise.resolve(this.requireRun(run.id));
  }

  // BEGIN IMMEDIATE: a transition reads budgets and then writes, and a deferred transaction that
  // must upgrade to a writer while another process writes fails with SQLITE_BUSY at once; taking
  // the write lock first waits for it (busy_timeout) instead.
  transition(change: StepTransition): Promise<void> {
    if (change.durable && this.synchronous !== 'FULL') {
      // In WAL mode, FULL makes this commit reach the disk before the side effect starts.
      this.db.pragma('synchronous = FULL');
      try {
        this.writeTransition.immediate(change);
      } finally {
        this.db.pragma(`synchronous = ${this.synchronous}`);
      }
    } else {
      this.writeTransition.immediate(change);
    }
    return Promise.resolve();
  }

  restartStep(runId: string, seq: number, startedAt: number, interruption: FailedAttempt): Promise<void> {
    this.db.transaction(() => {
      this.statements.restartStep.run({ runId, seq, startedAt, interruption: JSON.stringify(interruption) });
      this.statements.restartEffect.run({ runId, seq });
    }).immediate();
    return Promise.resolve();
  }

  recordFailedAttempts(runId: string, seq: number, failures: readonly FailedAttempt[], effectKey?: string): Promise<void> {
    this.db.transaction(() => {
      this.statements.recordAttempts.run({ runId, seq, log: JSON.stringify(failures) });
      if (effectKey !== undefined) this.statements.recordEffectAttempts.run({ effectKey, attempts: failures.length + 1 });
    }).immediate();
    return Promise.resolve();
  }

  claimEffect(key: string, attempt: number): Promise<boolean> {
    const claimed = this.statements.claimEffect.run({ key, attempt }).changes === 1;
    return Promise.resolve(claimed || this.statements.effectExists.get(key) === undefined);
  }

  finishRun(end: RunEnd): Promise<RunRecord> {
    try {
      this.db.transaction(() => {
        const open = end.state === 'completed' ? (this.statements.unfinishedChild.get(end.runId) as RunRow | undefined) : undefined;
        if (open) throw new UnfinishedSubRunError(end.runId, toRun(open));
        this.statements.finishRun.run({ ...end, activeMs: Math.max(0, Math.round(end.activeMs ?? 0)) });
      }).immediate();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return Promise.resolve(this.requireRun(end.runId));
  }

  claimRun(runId: string, owner: string, from: readonly RunState[], at: number): Promise<RunRecord | undefined> {
    const changed = this.statements.claimRun.run({ runId, owner, from: JSON.stringify(from), at }).changes;
    return Promise.resolve(changed === 1 ? this.requireRun(runId) : undefined);
  }

  raiseRunBudget(runId: string, limits: BudgetLimits, at: number): Promise<RunRecord | undefined> {
    const raised = this.db.transaction(() => {
      const text = JSON.stringify(limits);
      if (this.statements.raiseRunBudget.run({ runId, limits: text, at }).changes !== 1) return false;
      this.statements.setBudgetLimits.run({ id: `run:${runId}`, limits: text });
      return true;
    })();
    return Promise.resolve(raised ? this.requireRun(runId) : undefined);
  }

  markInterrupted(isOwnerAlive: (owner: string) => boolean, at: number): Promise<RunRecord[]> {
    const gone = (this.statements.runningRuns.all() as RunRow[]).filter((row) => row.owner === null || !isOwnerAlive(row.owner));
    const marked = this.db.transaction(() =>
      gone.filter(
        (row) =>
          this.statements.interrupt.run({
            id: row.id,
            owner: row.owner,
            at,
            error: 'The runtime process running it stopped before it finished.',
          }).changes === 1,
      ),
    ).immediate();
    return Promise.resolve(marked.map((row) => this.requireRun(row.id)));
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    const row = this.statements.getRun.get(runId) as RunRow | undefined;
    return Promise.resolve(row && toRun(row));
  }

  listRuns(options: { limit?: number; states?: readonly RunState[] } = {}): Promise<RunRecord[]> {
    const limit = options.limit ?? 100;
    const rows = (
      options.states
        ? this.statements.listRunsInStates.all(JSON.stringify(options.states), limit)
        : this.statements.listRuns.all(limit)
    ) as RunRow[];
    return Promise.resolve(rows.map(toRun));
  }

  threadRuns(threadId: string): Promise<RunRecord[]> {
    return Promise.resolve((this.statements.threadRuns.all(threadId) as RunRow[]).map(toRun));
  }

  getSteps(runId: string): Promise<StepRecord[]> {
    return Promise.resolve((this.statements.getSteps.all(runId) as StepRow[]).map(toStep));
  }

  getEffects(runId: string): Promise<EffectRecord[]> {
    return Promise.resolve((this.statements.getEffects.all(runId) as EffectRow[]).map(toEffect));
  }

  resolveRunId(prefix: string): Promise<string> {
    const wanted = runIdPrefix(prefix);
    const pattern = `${wanted.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = this.statements.findRuns.all(pattern) as { id: string }[];
    if (rows.length === 0) return Promise.reject(new StoreError(`No run has an id starting with "${prefix}".`));
    if (rows.length > 1 && rows[0]?.id !== wanted) {
      return Promise.reject(new StoreError(`More than one run has an id starting with "${prefix}"; give more of it.`));
    }
    return Promise.resolve(rows[0]!.id);
  }

  requestApproval(approval: NewApproval): Promise<ApprovalRecord> {
    this.statements.insertApproval.run({ ...approval, args: JSON.stringify(approval.args) });
    const row = this.statements.findApproval.get(approval.runId, approval.seq, approval.kind) as ApprovalRow;
    return Promise.resolve(toApproval(row));
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = this.statements.getApproval.get(id) as ApprovalRow | undefined;
    return Promise.resolve(row && toApproval(row));
  }

  findApproval(runId: string, seq: number, kind: ApprovalKind): Promise<ApprovalRecord | undefined> {
    const row = this.statements.findApproval.get(runId, seq, kind) as ApprovalRow | undefined;
    return Promise.resolve(row && toApproval(row));
  }

  listApprovals(options: { status?: ApprovalStatus; runId?: string } = {}): Promise<ApprovalRecord[]> {
    const rows = this.statements.listApprovals.all({
      status: options.status ?? null,
      runId: options.runId ?? null,
    }) as ApprovalRow[];
    return Promise.resolve(rows.map(toApproval));
  }

  decideApproval(id: string, decision: Decision, meta: DecisionMeta, expired = false): Promise<ApprovalRecord> {
    const changed = this.statements.decideApproval.run({
      id,
      decision: JSON.stringify(decision),
      status: expired ? 'expired' : 'decided',
      ...meta,
    }).changes;
    const row = this.statements.getApproval.get(id) as ApprovalRow | undefined;
    if (!row) return Promise.reject(new StoreError(`No approval ${id}.`));
    if (changed === 0) {
      return Promise.reject(
        new StoreError(
          row.status === 'expired'
            ? `Approval ${id} expired at its deadline and was rejected; its decision stands.`
            : `Approval ${id} was already decided by ${row.decided_by ?? 'someone'}; its decision stands.`,
        ),
      );
    }
    return Promise.resolve(toApproval(row));
  }

  escalateApproval(id: string, at: number, deadline: number): Promise<ApprovalRecord> {
    this.statements.escalateApproval.run({ id, at, deadline });
    const row = this.statements.getApproval.get(id) as ApprovalRow | undefined;
    if (!row) return Promise.reject(new StoreError(`No approval ${id}.`));
    return Promise.resolve(toApproval(row));
  }

  ensureBudget(budget: { id: string; kind: 'run' | 'pool'; limits: BudgetLimits; at: number }): Promise<void> {
    this.statements.insertBudget.run({ ...budget, limits: JSON.stringify(budget.limits) });
    return Promise.resolve();
  }

  getBudgets(ids: readonly string[]): Promise<BudgetRecord[]> {
    return Promise.resolve(
      ids.flatMap((id) => {
        const row = this.statements.getBudget.get(id) as BudgetRow | undefined;
        return row ? [toBudget(row)] : [];
      }),
    );
  }

  listReservations(options: { runId?: string; status?: ReservationRecord['status'] } = {}): Promise<ReservationRecord[]> {
    const rows = this.statements.listReservations.all({ runId: options.runId ?? null, status: options.status ?? null }) as ReservationRow[];
    return Promise.resolve(rows.map(toReservation));
  }

  settleHeld(runId: string, at: number): Promise<ReservationRecord[]> {
    const held = this.statements.listReservations.all({ runId, status: 'held' }) as ReservationRow[];
    const settled = this.db.transaction(() =>
      held.flatMap((row) => {
        const closed = this.closeReservation(row.id, toReservation(row).amounts, at);
        return closed ? [closed] : [];
      }),
    ).immediate();
    return Promise.resolve(settled);
  }

  childRuns(parentRunId: string): Promise<RunRecord[]> {
    return Promise.resolve((this.statements.childRuns.all(parentRunId) as RunRow[]).map(toRun));
  }

  tallyBreaker(update: BreakerUpdate): Promise<BreakerTally> {
    return Promise.resolve(this.breakerTally.immediate(update));
  }

  close(): Promise<void> {
    this.closeNow();
    return Promise.resolve();
  }

  /** Closes the connection, then says so in the sessions folder: the file was left cleanly. */
  closeNow(): void {
    if (!this.db.open) return;
    this.db.close();
    OPEN_STORES.delete(this);
    this.session?.close();
  }

  private requireRun(runId: string): RunRecord {
    const row = this.statements.getRun.get(runId) as RunRow | undefined;
    if (!row) throw new StoreError(`Run ${runId} is not in ${this.location}.`);
    return toRun(row);
  }
}
