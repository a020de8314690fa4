import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError, describeError } from '../errors';
import type {
  CheckpointStore,
  NewRun,
  RunEnd,
  RunRecord,
  RunState,
  StepEnd,
  StepKind,
  StepRecord,
  StepStart,
  StepStatus,
} from './checkpointStore';
import { SQLITE_MIGRATIONS, type Migration } from './sqliteMigrations';

/** `PRAGMA application_id` of Keel databases: "KEEL" in ASCII. */
const KEEL_APPLICATION_ID = 0x4b45454c;

export interface SqliteStoreOptions {
  /** Defaults to Keel's own migrations; tests pass longer lists to exercise upgrades. */
  readonly migrations?: readonly Migration[];
  /** `NORMAL` (default) survives a crash of the process; `FULL` also survives a power cut. */
  readonly synchronous?: 'NORMAL' | 'FULL';
}

interface RunRow {
  id: string;
  agent: string;
  agent_file: string | null;
  model: string;
  input: string;
  state: RunState;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  step_count: number;
  input_tokens: number;
  output_tokens: number;
  result: string | null;
  error: string | null;
}

interface StepRow {
  run_id: string;
  seq: number;
  kind: StepKind;
  name: string;
  status: StepStatus;
  input: string;
  output: string | null;
  error: string | null;
  idempotency_key: string | null;
  started_at: number;
  ended_at: number | null;
}

/** Opens (creating and migrating as needed) a Keel database file. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  const migrations = options.migrations ?? SQLITE_MIGRATIONS;
  let db: Database.Database;
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
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, path, migrations);
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `Keel cannot read its database ${path} (${describeError(error)}). ` +
        'Move the file aside to start a new one, or restore it from a backup; Keel has not changed it.',
      { cause: error },
    );
  }
  return new SqliteStore(db, path);
}

/** Throws a StoreError, without writing anything, when the file is not Keel's or is from a newer Keel. */
function checkCompatible(db: Database.Database, path: string, latest: number): { applicationId: number; version: number } {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const foreign =
    applicationId === 0
      ? (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n > 0
      : applicationId !== KEEL_APPLICATION_ID;
  if (foreign) {
    throw new StoreError(
      `${path} is an SQLite database that Keel did not create; point Keel at another file (keel.databasePath or --db).`,
    );
  }
  if (version > latest) {
    throw new StoreError(
      `${path} was written by a newer Keel (schema version ${version}; this Keel understands up to ${latest}). ` +
        'Upgrade keel-agents to open it; it has not been changed.',
    );
  }
  return { applicationId, version };
}

function migrate(db: Database.Database, path: string, migrations: readonly Migration[]): void {
  const latest = migrations.length;
  db.transaction(() => {
    // Checked again inside the transaction: another process may have created the file meanwhile.
    const { applicationId, version } = checkCompatible(db, path, latest);
    if (applicationId === 0) db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
    for (const migration of migrations.slice(version)) migration.up(db);
    db.pragma(`user_version = ${latest}`);
  }).immediate();
}

export class SqliteStore implements CheckpointStore {
  private readonly statements;

  constructor(
    private readonly db: Database.Database,
    readonly location: string,
  ) {
    this.statements = {
      insertRun: db.prepare(
        `INSERT INTO runs (id, agent, agent_file, model, input, state, created_at, updated_at)
         VALUES (@id, @agent, @agentFile, @model, @input, 'running', @createdAt, @createdAt)`,
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      listRuns: db.prepare('SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT ?'),
      findRuns: db.prepare("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 2"),
      insertStep: db.prepare(
        `INSERT INTO steps (run_id, seq, kind, name, status, input, idempotency_key, started_at)
         VALUES (@runId, @seq, @kind, @name, 'in_progress', @input, @idempotencyKey, @startedAt)`,
      ),
      touchRun: db.prepare('UPDATE runs SET updated_at = ? WHERE id = ?'),
      endStep: db.prepare(
        `UPDATE steps SET status = @status, output = @output, error = @error, ended_at = @endedAt
         WHERE run_id = @runId AND seq = @seq`,
      ),
      countStep: db.prepare(
        `UPDATE runs SET step_count = step_count + 1, input_tokens = input_tokens + @inputTokens,
         output_tokens = output_tokens + @outputTokens, updated_at = @endedAt WHERE id = @runId`,
      ),
      getStep: db.prepare('SELECT * FROM steps WHERE run_id = ? AND seq = ?'),
      getSteps: db.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY seq'),
      finishRun: db.prepare(
        `UPDATE runs SET state = @state, result = @result, error = @error, ended_at = @endedAt, updated_at = @endedAt
         WHERE id = @runId`,
      ),
    };
  }

  createRun(run: NewRun): Promise<RunRecord> {
    this.statements.insertRun.run(run);
    return Promise.resolve(this.requireRun(run.id));
  }

  beginStep(step: StepStart): Promise<StepRecord> {
    this.db.transaction(() => {
      this.statements.insertStep.run({ ...step, input: JSON.stringify(step.input) });
      this.statements.touchRun.run(step.startedAt, step.runId);
    })();
    return Promise.resolve(this.requireStep(step.runId, step.seq));
  }

  endStep(step: StepEnd): Promise<StepRecord> {
    this.db.transaction(() => {
      this.statements.endStep.run({ ...step, output: step.output === undefined ? null : JSON.stringify(step.output) });
      this.statements.countStep.run({ ...step.usage, endedAt: step.endedAt, runId: step.runId });
    })();
    return Promise.resolve(this.requireStep(step.runId, step.seq));
  }

  finishRun(end: RunEnd): Promise<RunRecord> {
    this.statements.finishRun.run(end);
    return Promise.resolve(this.requireRun(end.runId));
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    const row = this.statements.getRun.get(runId) as RunRow | undefined;
    return Promise.resolve(row && toRun(row));
  }

  listRuns(options: { limit?: number } = {}): Promise<RunRecord[]> {
    const rows = this.statements.listRuns.all(options.limit ?? 100) as RunRow[];
    return Promise.resolve(rows.map(toRun));
  }

  getSteps(runId: string): Promise<StepRecord[]> {
    return Promise.resolve((this.statements.getSteps.all(runId) as StepRow[]).map(toStep));
  }

  resolveRunId(prefix: string): Promise<string> {
    const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = this.statements.findRuns.all(pattern) as { id: string }[];
    if (rows.length === 0) return Promise.reject(new StoreError(`No run has an id starting with "${prefix}".`));
    if (rows.length > 1 && rows[0]?.id !== prefix) {
      return Promise.reject(new StoreError(`More than one run has an id starting with "${prefix}"; give more of it.`));
    }
    return Promise.resolve(rows[0]!.id);
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }

  private requireRun(runId: string): RunRecord {
    const row = this.statements.getRun.get(runId) as RunRow | undefined;
    if (!row) throw new StoreError(`Run ${runId} is not in ${this.location}.`);
    return toRun(row);
  }

  private requireStep(runId: string, seq: number): StepRecord {
    const row = this.statements.getStep.get(runId, seq) as StepRow | undefined;
    if (!row) throw new StoreError(`Step ${seq} of run ${runId} is not in ${this.location}.`);
    return toStep(row);
  }
}

function toRun(row: RunRow): RunRecord {
  return {
    id: row.id,
    agent: row.agent,
    agentFile: row.agent_file,
    model: row.model,
    input: row.input,
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    endedAt: row.ended_at,
    stepCount: row.step_count,
    usage: { inputTokens: row.input_tokens, outputTokens: row.output_tokens },
    result: row.result,
    error: row.error,
  };
}

function toStep(row: StepRow): StepRecord {
  return {
    runId: row.run_id,
    seq: row.seq,
    kind: row.kind,
    name: row.name,
    status: row.status,
    input: JSON.parse(row.input) as unknown,
    output: row.output === null ? null : (JSON.parse(row.output) as unknown),
    error: row.error,
    idempotencyKey: row.idempotency_key,
    startedAt: row.started_at,
    endedAt: row.ended_at,
  };
}
