import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { SQLITE_MIGRATIONS } from '../../src/runtime/store/sqliteMigrations';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { KEEL, describeOutcome, keelUntil, listRuns, showRun } from '../support/keelCli';
import { REPO_ROOT, runNode, spawnNode, testEnv, within, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
const MIGRATION_CHILD = join(REPO_ROOT, 'out', 'test', 'fault', 'fixtures', 'migrationChild.js');

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function assertNoStackTrace(result: Finished): void {
  assert.ok(!(result.stdout + result.stderr).includes('    at '), `no stack trace should be printed:\n${result.stderr}`);
}

describe('bad input', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();

  before(() => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  });

  describe('a damaged database file', () => {
    let dir: string;
    let db: string;
    let runIds: string[];

    /** A real Keel database: the travel agent run 40 times, so the file has pages to damage in its middle. */
    beforeEach(async () => {
      dir = tempDir('keel-damaged-');
      db = join(dir, 'keel.db');
      const store = openSqliteStore(db);
      const { agent, file } = await loadAgentFile(TRAVEL);
      const runtime = new Runtime({ store });
      runIds = [];
      for (let index = 0; index < 40; index++) {
        const handle = await runtime.start(agent, { input: `Fly NYC to LIS on 2026-12-${String((index % 28) + 1).padStart(2, '0')}`, agentFile: file });
        assert.equal((await handle.done).state, 'completed');
        runIds.push(handle.runId);
      }
      await store.close();
      assert.deepEqual(readdirSync(dir).sort(), ['keel.db', 'keel.db-sessions'], 'closing the store folds the write-ahead log into the file');
    });

    /** Every command that opens the database refuses it in one line naming it, and changes nothing. */
    async function assertRefused(damage: string): Promise<void> {
      const before = readFileSync(db);
      const files = readdirSync(dir);
      const commands: readonly (readonly string[])[] = [['runs'], ['show', runIds[0] ?? ''], ['run', TRAVEL, '--input', 'Fly NYC to LIS']];
      for (const command of commands) {
        const result = await runNode(KEEL, [...command, '--db', db], { cwd: dir });
        const what = `keel ${command[0] ?? ''} on ${damage}`;
        assert.equal(result.code, 1, `${what}: ${describeOutcome(result)}`);
        assert.equal(result.stdout, '', `${what} prints nothing on stdout`);
        const message = lines(result.stderr);
        assert.equal(message.length, 1, `${what}: one line:\n${result.stderr}`);
        assert.match(
          message[0] ?? '',
          new RegExp(`^keel: Keel cannot read its database ${escapeRegExp(db)} \\([^\\n]+\\)\\. Move the file aside .*Keel has not changed it\\.$`),
          what,
        );
        assertNoStackTrace(result);
      }
      assert.deepEqual(readFileSync(db), before, `the ${damage} file must not change`);
      assert.deepEqual(readdirSync(dir), files, 'no write-ahead log or other file is left next to it');
    }

    it('reads an intact copy, without changing a byte of it', async () => {
      const before = readFileSync(db);
      const runs = await listRuns(db, { cwd: dir });
      assert.deepEqual(runs.map((run) => run.id).sort(), [...runIds].sort());
      assert.ok(runs.every((run) => run.state === 'completed'));
      assert.deepEqual(readFileSync(db), before, 'opening a current database to read it must not write to it');
    });

    it('refuses a database cut to half its size', async () => {
      const size = statSync(db).size;
      truncateSync(db, Math.floor(size / 2));
      await assertRefused('truncated');
    });

    it('refuses a database with random bytes written over its middle pages', async () => {
      const header = readFileSync(db).subarray(16, 18);
      const pageSize = header.readUInt16BE(0) === 1 ? 65_536 : header.readUInt16BE(0);
      const pages = statSync(db).size / pageSize;
      assert.ok(pages >= 8, `the database should have pages in its middle (it has ${pages})`);
      const fd = openSync(db, 'r+');
      try {
        writeSync(fd, randomBytes(2 * pageSize), 0, 2 * pageSize, (Math.floor(pages / 2) - 1) * pageSize);
      } finally {
        closeSync(fd);
      }
      await assertRefused('corrupt');
    });
  });

  describe('a journal from an edited agent', () => {
    /** Looks a city up (`none`), then waits for as long as WAIT_MS says (`none`), then answers. */
    const AGENT_SOURCE = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const lookup = defineTool({
  name: 'lookup',
  description: 'Finds the airport code of a city.',
  args: z.object({ city: z.string() }),
  effect: 'none',
  run: ({ city }) => ({ city, code: city.slice(0, 3).toUpperCase() }),
});

const wait = defineTool({
  name: 'wait',
  description: 'Waits for the airline to answer.',
  args: z.object({}),
  effect: 'none',
  run: async () => {
    await new Promise((resolve) => setTimeout(resolve, Number(process.env['WAIT_MS'] ?? 0)));
    return 'answered';
  },
});

export default defineAgent({
  name: 'editable',
  instructions: 'Find the city, then wait for the airline.',
  model: scriptedModel([
    { text: 'Looking it up.', toolCalls: [{ name: 'lookup', args: { city: 'Lisbon' } }] },
    { toolCalls: [{ name: 'wait', args: {} }] },
    'Lisbon is LIS.',
  ]),
  tools: [lookup, wait],
  maxSteps: 6,
});
`;

    const edits = [
      {
        name: 'its instructions changed',
        from: "instructions: 'Find the city, then wait for the airline.'",
        to: "instructions: 'Find the city, then wait for the airline. Be brief.'",
        step: 1,
        detail: 'the conversation the agent now sends the model differs from the recorded one (its instructions, tools or earlier results changed)',
      },
      {
        name: 'its maxSteps lowered below the steps it recorded',
        from: 'maxSteps: 6',
        to: 'maxSteps: 1',
        step: 3,
        detail: 'the journal recorded a model call here, but the agent now stops, having reached maxSteps (1)',
      },
    ] as const;

    for (const edit of edits) {
      it(`refuses to resume a run whose agent had ${edit.name}, keeps the run, and resumes it once the file is restored`, async () => {
        const dir = tempDir('keel-edited-');
        const db = join(dir, 'keel.db');
        const file = join(dir, 'editable.agent.ts');
        writeFileSync(file, AGENT_SOURCE);
        const options = { cwd: dir, env: testEnv({ WAIT_MS: '60000' }) };

        // Killed while its fourth step (the wait) is in flight: steps 1 to 3 are recorded as completed.
        const killed = await keelUntil(['run', file, '--input', 'Where is Lisbon?', '--db', db], { after: /^\s+3 model /m, delayMs: 100 }, options);
        assert.ok(killed.killed, `keel run should have been killed mid-run: ${describeOutcome(killed)}`);
        const [run] = await listRuns(db, options);
        assert.ok(run);
        const interrupted = await showRun(run.id, db, options);
        assert.equal(interrupted.run.state, 'interrupted');
        assert.deepEqual(
          interrupted.steps.map((step) => [step.seq, step.kind, step.status]),
          [
            [1, 'model', 'completed'],
            [2, 'tool', 'completed'],
            [3, 'model', 'completed'],
            [4, 'tool', 'in_progress'],
          ],
        );

        writeFileSync(file, AGENT_SOURCE.replace(edit.from, edit.to));
        const refused = await runNode(KEEL, ['resume', run.id, '--db', db], { ...options, env: testEnv({ WAIT_MS: '0' }) });
        assert.equal(refused.code, 1, describeOutcome(refused));
        const expected = `Run ${run.id} no longer matches its agent at step ${edit.step}: ${edit.detail}. Restore the agent as it was when the run started, or start a new run; nothing after step ${edit.step - 1} was executed.`;
        assert.ok(lines(refused.stdout).includes(expected), `the divergence is reported:\n${refused.stdout}`);
        assertNoStackTrace(refused);

        const kept = await showRun(run.id, db, options);
        assert.equal(kept.run.state, 'interrupted', 'the run stays interrupted, so it can be resumed later');
        assert.equal(kept.run.error, expected);
        assert.deepEqual(kept.steps, interrupted.steps, 'its journal is exactly as it was');
        assert.deepEqual(kept.approvals, []);

        writeFileSync(file, AGENT_SOURCE);
        const resumed = await runNode(KEEL, ['resume', run.id, '--json', '--db', db], { ...options, env: testEnv({ WAIT_MS: '0' }) });
        assert.equal(resumed.code, 0, describeOutcome(resumed));
        const done = JSON.parse(resumed.stdout) as { run: RunRecord; steps: StepRecord[] };
        assert.equal(done.run.id, run.id);
        assert.equal(done.run.state, 'completed');
        assert.equal(done.run.result, 'Lisbon is LIS.');
        assert.deepEqual(done.steps.slice(0, 3), interrupted.steps.slice(0, 3), 'the completed steps were not run again');
        assert.deepEqual(
          done.steps.map((step) => [step.seq, step.status]),
          [
            [1, 'completed'],
            [2, 'completed'],
            [3, 'completed'],
            [4, 'completed'],
            [5, 'completed'],
          ],
        );
      });
    }
  });

  describe('a SIGKILL during a migration', () => {
    interface Tables {
      readonly version: number;
      readonly runColumns: readonly string[];
      readonly runs: readonly Record<string, unknown>[];
      readonly steps: readonly Record<string, unknown>[];
    }

    function readTables(path: string): Tables {
      const db = new Database(path, { readonly: true });
      try {
        return {
          version: db.pragma('user_version', { simple: true }) as number,
          runColumns: (db.prepare('SELECT name FROM pragma_table_info(?)').all('runs') as { name: string }[]).map((column) => column.name),
          runs: db.prepare('SELECT * FROM runs ORDER BY id').all() as Record<string, unknown>[],
          steps: db.prepare('SELECT * FROM steps ORDER BY run_id, seq').all() as Record<string, unknown>[],
        };
      } finally {
        db.close();
      }
    }

    /** The columns `before` had, taken from each row of `after`. */
    function projected(after: readonly Record<string, unknown>[], before: readonly Record<string, unknown>[]): Record<string, unknown>[] {
      const columns = Object.keys(before[0] ?? {});
      return after.map((row) => Object.fromEntries(columns.map((column) => [column, row[column]])));
    }

    it('rolls the migration back: the next open migrates to the latest schema and keeps every run recorded before', async () => {
      const dir = tempDir('keel-migration-');
      const db = join(dir, 'keel.db');

      const created = await runNode(MIGRATION_CHILD, ['v1', db, '25']);
      assert.equal(created.code, 0, describeOutcome(created));
      const v1 = readTables(db);
      assert.equal(v1.version, 1);
      assert.equal(v1.runs.length, 25);
      assert.equal(v1.steps.length, 100);

      // Killed while its last migration busy-waits inside the migration transaction.
      const migrating = spawnNode(MIGRATION_CHILD, ['slow', db, '30000']);
      migrating.child.stdin.end();
      await migrating.stderrIncludes('migrating');
      migrating.child.kill('SIGKILL');
      const exit = await within(migrating.exited, 'the migrating child dying');
      assert.equal(exit.signal, 'SIGKILL');
      assert.ok(!migrating.stderr().includes('migrated'), 'the kill landed before the migration ended');

      // The normal code opens it, as the CLI does, and migrates it.
      const runs = await listRuns(db, { cwd: dir });
      assert.deepEqual(
        runs.map((run) => [run.id, run.state, run.input, run.result, run.stepCount]).sort(),
        v1.runs.map((row) => [row['id'], row['state'], row['input'], row['result'], row['step_count']]).sort(),
      );
      const shown = await showRun('run_v1_0003', db, { cwd: dir });
      assert.deepEqual(
        shown.steps.map((step) => [step.seq, step.kind, step.name, step.status, step.attempts, step.failedAttempts]),
        [
          [1, 'model', 'keel.scripted:travel-script', 'completed', 1, []],
          [2, 'tool', 'search_flights', 'completed', 1, []],
          [3, 'model', 'keel.scripted:travel-script', 'completed', 1, []],
          [4, 'tool', 'book_flight', 'completed', 1, []],
        ],
      );

      const latest = readTables(db);
      assert.equal(latest.version, SQLITE_MIGRATIONS.length, 'the schema is at the latest version');
      assert.ok(!latest.runColumns.includes('notes'), 'nothing of the killed migration is left');
      assert.deepEqual(projected(latest.runs, v1.runs), v1.runs, 'every run recorded before is intact');
      assert.deepEqual(projected(latest.steps, v1.steps), v1.steps, 'every step recorded before is intact');
      for (const row of latest.runs) assert.match(String(row['trace_id']), /^[0-9a-f]{32}$/);

      const check = new Database(db, { readonly: true });
      assert.equal(check.pragma('quick_check', { simple: true }), 'ok');
      check.close();
    });
  });
});
