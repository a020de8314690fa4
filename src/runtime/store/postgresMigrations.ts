/**
 * What a migration needs of a connection: node-postgres' Client and PoolClient and PGlite all
 * have it. One statement per call (PGlite's `query` takes no more).
 */
export interface SqlSession {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Schema changes, in order: `keel_schema.version` is the number of migrations applied. Append new
 * migrations; never edit one that has shipped. Each runs inside the one transaction that takes the
 * database to the latest version, so a failure leaves it as it was.
 */
export interface PostgresMigration {
  readonly description: string;
  up(db: SqlSession): Promise<void>;
}

async function run(db: SqlSession, statements: readonly string[]): Promise<void> {
  for (const statement of statements) await db.query(statement);
}

/**
 * The same tables as the SQLite store's: the first migration as they are after SQLite's fifth, the
 * second as SQLite's sixth. Identifiers sort and match byte by byte (`COLLATE "C"`), as in SQLite,
 * whatever the database's locale; times are milliseconds since the epoch (BIGINT); money is DOUBLE
 * PRECISION, the same doubles as SQLite's REAL; JSON is kept as the text Keel wrote.
 */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    description: 'the Keel marker and schema version; runs, their journals, the effect ledger, approvals, budgets and reservations',
    up: (db) =>
      run(db, [
        `CREATE TABLE keel_schema (
          application TEXT NOT NULL,
          version INTEGER NOT NULL
        )`,
        "INSERT INTO keel_schema (application, version) VALUES ('keel', 0)",
        `CREATE TABLE runs (
          id TEXT COLLATE "C" PRIMARY KEY,
          agent TEXT NOT NULL,
          agent_file TEXT,
          model TEXT NOT NULL,
          input TEXT NOT NULL,
          state TEXT NOT NULL,
          trace_id TEXT NOT NULL,
          owner TEXT,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          ended_at BIGINT,
          step_count INTEGER NOT NULL DEFAULT 0,
          input_tokens BIGINT NOT NULL DEFAULT 0,
          output_tokens BIGINT NOT NULL DEFAULT 0,
          cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
          cost_known BOOLEAN NOT NULL DEFAULT TRUE,
          active_ms BIGINT NOT NULL DEFAULT 0,
          budget TEXT,
          agent_facts TEXT,
          parent_run_id TEXT COLLATE "C",
          parent_seq INTEGER,
          result TEXT,
          error TEXT
        )`,
        'CREATE INDEX runs_by_creation ON runs (created_at DESC, id DESC)',
        'CREATE INDEX runs_by_state ON runs (state)',
        'CREATE INDEX runs_by_parent ON runs (parent_run_id)',
        `CREATE TABLE steps (
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')),
          name TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
          input TEXT NOT NULL,
          output TEXT,
          error TEXT,
          idempotency_key TEXT,
          attempts INTEGER NOT NULL DEFAULT 1,
          attempt_log TEXT NOT NULL DEFAULT '[]',
          cost_usd DOUBLE PRECISION,
          started_at BIGINT NOT NULL,
          ended_at BIGINT,
          PRIMARY KEY (run_id, seq)
        )`,
        `CREATE TABLE effects (
          key TEXT COLLATE "C" PRIMARY KEY,
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          tool TEXT NOT NULL,
          effect TEXT NOT NULL CHECK (effect IN ('idempotent', 'unsafe')),
          args_hash TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
          attempts INTEGER NOT NULL DEFAULT 1,
          result TEXT,
          error TEXT,
          started_at BIGINT NOT NULL,
          ended_at BIGINT
        )`,
        'CREATE INDEX effects_by_run ON effects (run_id, seq)',
        `CREATE TABLE approvals (
          id TEXT COLLATE "C" PRIMARY KEY,
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('unknown_outcome', 'policy')),
          agent TEXT NOT NULL,
          tool TEXT NOT NULL,
          args TEXT NOT NULL,
          args_hash TEXT NOT NULL,
          summary TEXT NOT NULL,
          reason TEXT NOT NULL,
          requested_at BIGINT NOT NULL,
          deadline BIGINT,
          on_expiry TEXT NOT NULL DEFAULT 'reject' CHECK (on_expiry IN ('reject', 'escalate')),
          escalate_to TEXT,
          escalated_at BIGINT,
          status TEXT NOT NULL CHECK (status IN ('pending', 'decided', 'expired')),
          decision TEXT,
          decided_by TEXT,
          decided_via TEXT,
          decided_at BIGINT,
          UNIQUE (run_id, seq, kind)
        )`,
        'CREATE INDEX approvals_by_status ON approvals (status, requested_at)',
        'CREATE INDEX approvals_by_run ON approvals (run_id, seq)',
        `CREATE TABLE budgets (
          id TEXT COLLATE "C" PRIMARY KEY,
          kind TEXT NOT NULL CHECK (kind IN ('run', 'pool')),
          limits TEXT NOT NULL,
          spent_input BIGINT NOT NULL DEFAULT 0,
          spent_output BIGINT NOT NULL DEFAULT 0,
          spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
          reserved_input BIGINT NOT NULL DEFAULT 0,
          reserved_output BIGINT NOT NULL DEFAULT 0,
          reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
          created_at BIGINT NOT NULL
        )`,
        `CREATE TABLE reservations (
          id TEXT COLLATE "C" PRIMARY KEY,
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          model TEXT NOT NULL,
          budget_ids TEXT NOT NULL,
          input_tokens BIGINT NOT NULL,
          output_tokens BIGINT NOT NULL,
          usd DOUBLE PRECISION NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'released')),
          actual_input BIGINT,
          actual_output BIGINT,
          actual_usd DOUBLE PRECISION,
          created_at BIGINT NOT NULL,
          closed_at BIGINT
        )`,
        'CREATE INDEX reservations_by_run ON reservations (run_id, status)',
      ]),
  },
  {
    description: 'threads and memory: runs in threads and tasks, namespaced long-term memory, the memory journal',
    // As SQLite's sixth migration, without its full-text index: keyword search scores in the store.
    up: (db) =>
      run(db, [
        'ALTER TABLE runs ADD COLUMN thread_id TEXT COLLATE "C"',
        'ALTER TABLE runs ADD COLUMN task_id TEXT COLLATE "C"',
        'CREATE INDEX runs_by_thread ON runs (thread_id, ended_at)',
        'CREATE INDEX runs_by_task ON runs (task_id, created_at)',
        `CREATE TABLE threads (
          id TEXT COLLATE "C" PRIMARY KEY,
          agent TEXT NOT NULL,
          title TEXT NOT NULL,
          summary TEXT,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL
        )`,
        `CREATE TABLE memory (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          namespace TEXT COLLATE "C" NOT NULL,
          key TEXT COLLATE "C" NOT NULL,
          schema INTEGER NOT NULL,
          value TEXT NOT NULL,
          text TEXT NOT NULL,
          channel TEXT NOT NULL,
          revision INTEGER NOT NULL DEFAULT 1,
          written_by TEXT NOT NULL,
          embedder TEXT,
          embedding BYTEA,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          UNIQUE (namespace, key)
        )`,
        `CREATE TABLE memory_ops (
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          op_index INTEGER NOT NULL,
          schema INTEGER NOT NULL,
          op TEXT NOT NULL,
          namespace TEXT,
          key TEXT,
          request TEXT NOT NULL,
          result TEXT NOT NULL,
          started_at BIGINT NOT NULL,
          ended_at BIGINT NOT NULL,
          PRIMARY KEY (run_id, seq, op_index)
        )`,
      ]),
  },
  {
    description: 'the attempt of each side effect last begun, so a durable engine that runs a step again can tell it was begun before',
    up: (db) => run(db, ['ALTER TABLE effects ADD COLUMN claimed_attempt INTEGER NOT NULL DEFAULT 0']),
  },
  {
    description: 'circuit breakers shared by every process: calls counted in buckets of the window, and each circuit open until when',
    up: (db) =>
      run(db, [
        `CREATE TABLE breaker_buckets (
          name TEXT COLLATE "C" NOT NULL,
          bucket BIGINT NOT NULL,
          successes INTEGER NOT NULL DEFAULT 0,
          failures INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (name, bucket)
        )`,
        `CREATE TABLE breakers (
          name TEXT COLLATE "C" PRIMARY KEY,
          open_until BIGINT,
          reason TEXT,
          counts_from BIGINT NOT NULL DEFAULT 0
        )`,
      ]),
  },
  {
    description: 'the alert outbox (alerts and one delivery per recipient), the review queue of sampled tool calls, and indexes for spend by time',
    up: (db) =>
      run(db, [
        `CREATE TABLE alerts (
          id TEXT COLLATE "C" PRIMARY KEY,
          key TEXT COLLATE "C" NOT NULL UNIQUE,
          dedup_key TEXT COLLATE "C" NOT NULL,
          event TEXT NOT NULL,
          severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
          title TEXT NOT NULL,
          body TEXT NOT NULL,
          run_id TEXT COLLATE "C",
          facts TEXT NOT NULL,
          repeats INTEGER NOT NULL DEFAULT 0,
          created_at BIGINT NOT NULL
        )`,
        'CREATE INDEX alerts_by_dedup ON alerts (dedup_key, created_at)',
        'CREATE INDEX alerts_by_creation ON alerts (created_at)',
        `CREATE TABLE alert_deliveries (
          alert_id TEXT COLLATE "C" NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
          target TEXT COLLATE "C" NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
          attempts INTEGER NOT NULL DEFAULT 0,
          next_attempt_at BIGINT NOT NULL,
          last_error TEXT,
          sent_at BIGINT,
          lease_owner TEXT,
          lease_until BIGINT,
          PRIMARY KEY (alert_id, target)
        )`,
        'CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at)',
        `CREATE TABLE reviews (
          id TEXT COLLATE "C" PRIMARY KEY,
          run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          agent TEXT COLLATE "C" NOT NULL,
          tool TEXT COLLATE "C" NOT NULL,
          effect TEXT NOT NULL,
          args TEXT NOT NULL,
          outcome TEXT NOT NULL,
          reason TEXT NOT NULL,
          sampled_at BIGINT NOT NULL,
          verdict TEXT CHECK (verdict IN ('agree', 'disagree')),
          note TEXT,
          reviewed_by TEXT,
          reviewed_at BIGINT,
          UNIQUE (run_id, seq)
        )`,
        'CREATE INDEX reviews_by_sampling ON reviews (sampled_at)',
        'CREATE INDEX steps_by_end ON steps (ended_at)',
        'CREATE INDEX reservations_by_close ON reservations (closed_at)',
      ]),
  },
];
