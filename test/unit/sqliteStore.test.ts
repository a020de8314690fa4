import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../../src/runtime/errors';
import { SQLITE_MIGRATIONS, type Migration } from '../../src/runtime/store/sqliteMigrations';
import type { NewRun } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';

const KEEL_APPLICATION_ID = 0x4b45454c;

describe('SqliteStore', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-store-'));
    path = join(dir, '.keel', 'keel.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function newRun(id: string, createdAt: number): NewRun {
    return { id, agent: 'travel', agentFile: '/a.agent.ts', model: 'openai:x', input: 'hi', traceId: 'ab'.repeat(16), owner: 'host/1/t', createdAt };
  }

  async function recordRun(id: string, createdAt: number): Promise<void> {
    const store = openSqliteStore(path);
    await store.createRun(newRun(id, createdAt));
    await store.transition({
      begin: {
        runId: id,
        seq: 1,
        kind: 'tool',
        name: 'book',
        input: { flight: 'UA66' },
        idempotencyKey: `${id}:1:0`,
        startedAt: createdAt + 1,
        effect: { key: `${id}:1:0`, tool: 'book', effect: 'unsafe', argsHash: 'h' },
      },
      durable: true,
    });
    await store.transition({
      end: {
        runId: id,
        seq: 1,
        status: 'completed',
        output: { content: 'ok' },
        error: null,
        endedAt: createdAt + 5,
        usage: { inputTokens: 10, outputTokens: 3 },
        effectKey: `${id}:1:0`,
      },
    });
    await store.finishRun({ runId: id, state: 'completed', result: 'done', error: null, endedAt: createdAt + 6, at: createdAt + 6 });
    await store.close();
  }

  it('keeps runs and their journal in a real file, across reopening', async () => {
    await recordRun('run_a', 1000);
    const store = openSqliteStore(path);
    const run = await store.getRun('run_a');
    assert.deepEqual(run, {
      id: 'run_a',
      agent: 'travel',
      agentFile: '/a.agent.ts',
      model: 'openai:x',
      input: 'hi',
      state: 'completed',
      traceId: 'ab'.repeat(16),
      owner: 'host/1/t',
      createdAt: 1000,
      updatedAt: 1006,
      endedAt: 1006,
      stepCount: 1,
      usage: { inputTokens: 10, outputTokens: 3 },
      costUsd: 0,
      costKnown: true,
      activeMs: 0,
      budget: null,
      agentFacts: null,
      parentRunId: null,
      parentSeq: null,
      threadId: null,
      taskId: null,
      result: 'done',
      error: null,
    });
    const [step] = await store.getSteps('run_a');
    assert.deepEqual(step, {
      runId: 'run_a',
      seq: 1,
      kind: 'tool',
      name: 'book',
      status: 'completed',
      input: { flight: 'UA66' },
      output: { content: 'ok' },
      error: null,
      idempotencyKey: 'run_a:1:0',
      attempts: 1,
      failedAttempts: [],
      costUsd: null,
      startedAt: 1001,
      endedAt: 1005,
    });
    const [effect] = await store.getEffects('run_a');
    assert.deepEqual(effect, {
      key: 'run_a:1:0',
      runId: 'run_a',
      seq: 1,
      tool: 'book',
      effect: 'unsafe',
      argsHash: 'h',
      status: 'completed',
      attempts: 1,
      result: { content: 'ok' },
      error: null,
      startedAt: 1001,
      endedAt: 1005,
    });
    await store.close();
  });

  it('records a step as in progress, with its inputs, before it ends', async () => {
    const store = openSqliteStore(path);
    await store.createRun(newRun('run_b', 1));
    await store.transition({
      begin: { runId: 'run_b', seq: 1, kind: 'model', name: 'm', input: { messageCount: 2 }, idempotencyKey: null, startedAt: 2 },
    });
    await store.close();
    const reopened = openSqliteStore(path);
    const [step] = await reopened.getSteps('run_b');
    assert.equal(step?.status, 'in_progress');
    assert.deepEqual(step?.input, { messageCount: 2 });
    await reopened.close();
  });

  it('uses write-ahead logging so the CLI and the editor can share the file', async () => {
    await recordRun('run_a', 1);
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
  });

  it('lists runs newest first, with a limit, and resolves unique id prefixes', async () => {
    await recordRun('run_01aaa', 1);
    await recordRun('run_01aab', 2);
    await recordRun('run_02ccc', 3);
    const store = openSqliteStore(path);
    assert.deepEqual((await store.listRuns()).map((run) => run.id), ['run_02ccc', 'run_01aab', 'run_01aaa']);
    assert.deepEqual((await store.listRuns({ limit: 1 })).map((run) => run.id), ['run_02ccc']);
    assert.equal(await store.resolveRunId('run_02'), 'run_02ccc');
    assert.equal(await store.resolveRunId('run_01aaa'), 'run_01aaa');
    await assert.rejects(store.resolveRunId('run_01'), /More than one run has an id starting with "run_01"/);
    await assert.rejects(store.resolveRunId('run_9'), /No run has an id starting with "run_9"/);
    await assert.rejects(store.resolveRunId('run_0%'), /No run has an id starting with "run_0%"/);
    await store.close();
  });

  it('ends runs and records attempts while another connection writes the file, waiting for its lock instead of failing', async () => {
    const store = openSqliteStore(path);
    const runs = Array.from({ length: 150 }, (_, index) => `run_${String(index).padStart(3, '0')}`);
    for (const [index, id] of runs.entries()) {
      await store.createRun(newRun(id, index));
      // A sub-agent run that has ended: completing its parent reads the children first, then writes.
      await store.createRun({ ...newRun(`${id}_child`, index), parentRunId: id, parentSeq: 1 });
      await store.finishRun({ runId: `${id}_child`, state: 'completed', result: 'ok', error: null, endedAt: index, at: index });
    }
    // Another process's writes, as many as it can make, on a connection of its own in another thread.
    const writer = new Worker(
      `const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
       const { parentPort, workerData } = require('node:worker_threads');
       const db = new Database(workerData, { timeout: 5000 });
       const touch = db.prepare("UPDATE runs SET updated_at = updated_at + 1 WHERE id = 'run_000'");
       let stop = false;
       parentPort.on('message', () => { stop = true; });
       parentPort.postMessage('writing');
       const loop = () => { for (let i = 0; i < 50; i++) touch.run(); if (stop) { db.close(); parentPort.close(); } else setImmediate(loop); };
       loop();`,
      { eval: true, workerData: path },
    );
    await once(writer, 'message');
    try {
      for (const [index, id] of runs.entries()) {
        await store.recordFailedAttempts(id, 1, [{ attempt: 1, error: 'timeout', class: 'retry', reason: 'a timeout', at: index, delayMs: 0 }]);
        await store.finishRun({ runId: id, state: 'completed', result: 'done', error: null, endedAt: index, at: index });
      }
    } finally {
      writer.postMessage('stop');
      await once(writer, 'exit');
    }
    assert.deepEqual(new Set((await store.listRuns({ limit: 1000 })).map((run) => run.state)), new Set(['completed']));
    await store.close();
  });

  describe('schema versions', () => {
    it('creates a new database at the latest version, marked as Keel\'s', async () => {
      await openSqliteStore(path).close();
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
      assert.equal(db.pragma('application_id', { simple: true }), KEEL_APPLICATION_ID);
      db.close();
    });

    it('migrates an older database forward, keeping its runs', async () => {
      await recordRun('run_old', 1);
      const addNotes: Migration = {
        description: 'notes on runs',
        up: (db) => db.exec("ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT ''"),
      };
      const store = openSqliteStore(path, { migrations: [...SQLITE_MIGRATIONS, addNotes] });
      assert.equal((await store.getRun('run_old'))?.result, 'done');
      await store.close();
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length + 1);
      assert.deepEqual(db.prepare('SELECT notes FROM runs').all(), [{ notes: '' }]);
      db.close();
    });

    it('refuses a database from a newer Keel, and leaves it untouched', () => {
      const db = new Database(join(dir, 'newer.db'));
      db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
      db.pragma('user_version = 99');
      db.exec('CREATE TABLE future (x)');
      db.close();
      const before = readFileSync(join(dir, 'newer.db'));
      assert.throws(
        () => openSqliteStore(join(dir, 'newer.db')),
        (error: unknown) =>
          error instanceof StoreError &&
          error.message.includes(`was written by a newer Keel (schema version 99; this Keel understands up to ${SQLITE_MIGRATIONS.length})`),
      );
      assert.deepEqual(readFileSync(join(dir, 'newer.db')), before);
    });

    it('refuses an SQLite database that another program made', () => {
      const other = join(dir, 'other.db');
      const db = new Database(other);
      db.exec('CREATE TABLE customers (id)');
      db.close();
      assert.throws(() => openSqliteStore(other), /is an SQLite database that Keel did not create/);
    });

    it('refuses a file that is not a database with a sentence, and changes nothing', () => {
      const garbage = join(dir, 'garbage.db');
      writeFileSync(garbage, 'this is not sqlite, just some text that happens to be long enough '.repeat(100));
      const before = readFileSync(garbage);
      assert.throws(
        () => openSqliteStore(garbage),
        (error: unknown) =>
          error instanceof StoreError &&
          error.message.startsWith(`Keel cannot read its database ${garbage}`) &&
          error.message.includes('Keel has not changed it'),
      );
      assert.deepEqual(readFileSync(garbage), before);
    });
  });
});
