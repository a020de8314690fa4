import type Database from 'better-sqlite3';

/**
 * Schema changes, in order: the database's `user_version` is the number of migrations applied.
 * Append new migrations; never edit one that has shipped.
 */
export interface Migration {
  readonly description: string;
  up(db: Database.Database): void;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    description: 'runs and their step journals',
    up(db) {
      db.exec(`
        CREATE TABLE runs (
          id TEXT PRIMARY KEY,
          agent TEXT NOT NULL,
          agent_file TEXT,
          model TEXT NOT NULL,
          input TEXT NOT NULL,
          state TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          ended_at INTEGER,
          step_count INTEGER NOT NULL DEFAULT 0,
          input_tokens INTEGER NOT NULL DEFAULT 0,
          output_tokens INTEGER NOT NULL DEFAULT 0,
          result TEXT,
          error TEXT
        );
        CREATE INDEX runs_by_creation ON runs (created_at DESC);
        CREATE TABLE steps (
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')),
          name TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
          input TEXT NOT NULL,
          output TEXT,
          error TEXT,
          idempotency_key TEXT,
          started_at INTEGER NOT NULL,
          ended_at INTEGER,
          PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    description: 'durable runs: trace ids, owners, attempts, the effect ledger and pending approvals',
    up(db) {
      db.exec(`
        ALTER TABLE runs ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
        UPDATE runs SET trace_id = lower(hex(randomblob(16))) WHERE trace_id = '';
        ALTER TABLE runs ADD COLUMN owner TEXT;
        CREATE INDEX runs_by_state ON runs (state);
        ALTER TABLE steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE steps ADD COLUMN attempt_log TEXT NOT NULL DEFAULT '[]';
        CREATE TABLE effects (
          key TEXT PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          tool TEXT NOT NULL,
          effect TEXT NOT NULL CHECK (effect IN ('idempotent', 'unsafe')),
          args_hash TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
          attempts INTEGER NOT NULL DEFAULT 1,
          result TEXT,
          error TEXT,
          started_at INTEGER NOT NULL,
          ended_at INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX effects_by_run ON effects (run_id, seq);
        CREATE TABLE approvals (
          id TEXT PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL,
          tool TEXT NOT NULL,
          args TEXT NOT NULL,
          args_hash TEXT NOT NULL,
          reason TEXT NOT NULL,
          requested_at INTEGER NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('pending', 'decided')),
          decision TEXT,
          decided_by TEXT,
          decided_at INTEGER,
          UNIQUE (run_id, seq, kind)
        );
        CREATE INDEX approvals_by_status ON approvals (status, requested_at);
      `);
    },
  },
  {
    description: 'approvals by policy: the agent, a summary, deadlines, escalation, expiry and who decided through what',
    up(db) {
      db.exec(`
        CREATE TABLE approvals_v3 (
          id TEXT PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('unknown_outcome', 'policy')),
          agent TEXT NOT NULL,
          tool TEXT NOT NULL,
          args TEXT NOT NULL,
          args_hash TEXT NOT NULL,
          summary TEXT NOT NULL,
          reason TEXT NOT NULL,
          requested_at INTEGER NOT NULL,
          deadline INTEGER,
          on_expiry TEXT NOT NULL DEFAULT 'reject' CHECK (on_expiry IN ('reject', 'escalate')),
          escalate_to TEXT,
          escalated_at INTEGER,
          status TEXT NOT NULL CHECK (status IN ('pending', 'decided', 'expired')),
          decision TEXT,
          decided_by TEXT,
          decided_via TEXT,
          decided_at INTEGER,
          UNIQUE (run_id, seq, kind)
        );
        INSERT INTO approvals_v3 (id, run_id, seq, kind, agent, tool, args, args_hash, summary, reason, requested_at,
                                  status, decision, decided_by, decided_via, decided_at)
          SELECT a.id, a.run_id, a.seq, a.kind, r.agent, a.tool, a.args, a.args_hash, a.tool, a.reason, a.requested_at,
                 a.status, a.decision, a.decided_by, CASE WHEN a.decided_by IS NULL THEN NULL ELSE 'cli' END, a.decided_at
          FROM approvals a JOIN runs r ON r.id = a.run_id;
        DROP TABLE approvals;
        ALTER TABLE approvals_v3 RENAME TO approvals;
        CREATE INDEX approvals_by_status ON approvals (status, requested_at);
        CREATE INDEX approvals_by_run ON approvals (run_id, seq);
      `);
    },
  },
  {
    description: 'cost control: spend per step and run, sub-agent runs, budgets and their reservations',
    up(db) {
      db.exec(`
        ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
        ALTER TABLE runs ADD COLUMN parent_seq INTEGER;
        ALTER TABLE runs ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN cost_known INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE runs ADD COLUMN active_ms INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN budget TEXT;
        CREATE INDEX runs_by_parent ON runs (parent_run_id);
        ALTER TABLE steps ADD COLUMN cost_usd REAL;
        CREATE TABLE budgets (
          id TEXT PRIMARY KEY,
          kind TEXT NOT NULL CHECK (kind IN ('run', 'pool')),
          limits TEXT NOT NULL,
          spent_input INTEGER NOT NULL DEFAULT 0,
          spent_output INTEGER NOT NULL DEFAULT 0,
          spent_usd REAL NOT NULL DEFAULT 0,
          reserved_input INTEGER NOT NULL DEFAULT 0,
          reserved_output INTEGER NOT NULL DEFAULT 0,
          reserved_usd REAL NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE reservations (
          id TEXT PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          model TEXT NOT NULL,
          budget_ids TEXT NOT NULL,
          input_tokens INTEGER NOT NULL,
          output_tokens INTEGER NOT NULL,
          usd REAL NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('held', 'settled', 'released')),
          actual_input INTEGER,
          actual_output INTEGER,
          actual_usd REAL,
          created_at INTEGER NOT NULL,
          closed_at INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX reservations_by_run ON reservations (run_id, status);
      `);
    },
  },
  {
    description: 'the agent as each run saw it: instructions, required tools, tool effects',
    up(db) {
      db.exec('ALTER TABLE runs ADD COLUMN agent_facts TEXT');
    },
  },
  {
    description: 'threads and memory: runs in threads and tasks, namespaced long-term memory with keyword search, the memory journal',
    up(db) {
      db.exec(`
        ALTER TABLE runs ADD COLUMN thread_id TEXT;
        ALTER TABLE runs ADD COLUMN task_id TEXT;
        CREATE INDEX runs_by_thread ON runs (thread_id, ended_at);
        CREATE INDEX runs_by_task ON runs (task_id, created_at);
        CREATE TABLE threads (
          id TEXT PRIMARY KEY,
          agent TEXT NOT NULL,
          title TEXT NOT NULL,
          summary TEXT,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE memory (
          id INTEGER PRIMARY KEY,
          namespace TEXT NOT NULL,
          key TEXT NOT NULL,
          schema INTEGER NOT NULL,
          value TEXT NOT NULL,
          text TEXT NOT NULL,
          channel TEXT NOT NULL,
          revision INTEGER NOT NULL DEFAULT 1,
          written_by TEXT NOT NULL,
          embedder TEXT,
          embedding BLOB,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          UNIQUE (namespace, key)
        );
        CREATE TABLE memory_ops (
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          op_index INTEGER NOT NULL,
          schema INTEGER NOT NULL,
          op TEXT NOT NULL,
          namespace TEXT,
          key TEXT,
          request TEXT NOT NULL,
          result TEXT NOT NULL,
          started_at INTEGER NOT NULL,
          ended_at INTEGER NOT NULL,
          PRIMARY KEY (run_id, seq, op_index)
        ) WITHOUT ROWID;
      `);
      // Keyword search uses SQLite's FTS5 where the build has it (better-sqlite3's does); without
      // it, the store scores keywords itself. PostgreSQL would use a tsvector index instead.
      try {
        db.exec(`
          CREATE VIRTUAL TABLE memory_fts USING fts5(
            namespace UNINDEXED, key, text, content = 'memory', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
          );
          CREATE TRIGGER memory_fts_insert AFTER INSERT ON memory BEGIN
            INSERT INTO memory_fts (rowid, namespace, key, text) VALUES (new.id, new.namespace, new.key, new.text);
          END;
          CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory BEGIN
            INSERT INTO memory_fts (memory_fts, rowid, namespace, key, text) VALUES ('delete', old.id, old.namespace, old.key, old.text);
          END;
          CREATE TRIGGER memory_fts_update AFTER UPDATE OF namespace, key, text ON memory BEGIN
            INSERT INTO memory_fts (memory_fts, rowid, namespace, key, text) VALUES ('delete', old.id, old.namespace, old.key, old.text);
            INSERT INTO memory_fts (rowid, namespace, key, text) VALUES (new.id, new.namespace, new.key, new.text);
          END;
        `);
      } catch (error) {
        if (!/no such module: fts5/i.test(String(error))) throw error;
      }
    },
  },
  {
    description: 'the attempt of each side effect last begun, so a durable engine that runs a step again can tell it was begun before',
    up(db) {
      db.exec('ALTER TABLE effects ADD COLUMN claimed_attempt INTEGER NOT NULL DEFAULT 0');
    },
  },
  {
    description: 'circuit breakers shared by every process: calls counted in buckets of the window, and each circuit open until when',
    up(db) {
      db.exec(`
        CREATE TABLE breaker_buckets (
          name TEXT NOT NULL,
          bucket INTEGER NOT NULL,
          successes INTEGER NOT NULL DEFAULT 0,
          failures INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (name, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE breakers (
          name TEXT PRIMARY KEY,
          open_until INTEGER,
          reason TEXT,
          counts_from INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    description: 'the alert outbox (alerts and one delivery per recipient), the review queue of sampled tool calls, and indexes for spend by time',
    up(db) {
      db.exec(`
        CREATE TABLE alerts (
          id TEXT PRIMARY KEY,
          key TEXT NOT NULL UNIQUE,
          dedup_key TEXT NOT NULL,
          event TEXT NOT NULL,
          severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
          title TEXT NOT NULL,
          body TEXT NOT NULL,
          run_id TEXT,
          facts TEXT NOT NULL,
          repeats INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX alerts_by_dedup ON alerts (dedup_key, created_at);
        CREATE INDEX alerts_by_creation ON alerts (created_at);
        CREATE TABLE alert_deliveries (
          alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
          target TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
          attempts INTEGER NOT NULL DEFAULT 0,
          next_attempt_at INTEGER NOT NULL,
          last_error TEXT,
          sent_at INTEGER,
          lease_owner TEXT,
          lease_until INTEGER,
          PRIMARY KEY (alert_id, target)
        ) WITHOUT ROWID;
        CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
        CREATE TABLE reviews (
          id TEXT PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          agent TEXT NOT NULL,
          tool TEXT NOT NULL,
          effect TEXT NOT NULL,
          args TEXT NOT NULL,
          outcome TEXT NOT NULL,
          reason TEXT NOT NULL,
          sampled_at INTEGER NOT NULL,
          verdict TEXT CHECK (verdict IN ('agree', 'disagree')),
          note TEXT,
          reviewed_by TEXT,
          reviewed_at INTEGER,
          UNIQUE (run_id, seq)
        ) WITHOUT ROWID;
        CREATE INDEX reviews_by_sampling ON reviews (sampled_at);
        CREATE INDEX steps_by_end ON steps (ended_at);
        CREATE INDEX reservations_by_close ON reservations (closed_at);
      `);
    },
  },
];
