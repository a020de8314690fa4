import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { KEEL, describeOutcome } from '../support/keelCli';
import { REPO_ROOT, runNode, spawnNode, within } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
/** An agent whose one tool never returns, as if its process died there. */
const HANGING_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const wait = defineTool({
  name: 'wait',
  description: 'Waits forever.',
  args: z.object({}),
  effect: 'idempotent',
  run: (_args, ctx) => {
    ctx.log('waiting started');
    // A timer keeps the process alive: a promise alone would let it end (and close the store) before the kill.
    return new Promise(() => setInterval(() => undefined, 60_000));
  },
});

export default defineAgent({
  name: 'waits',
  instructions: 'Wait.',
  model: scriptedModel(({ turn }) => (turn === 0 ? { toolCalls: [{ name: 'wait', args: {} }] } : 'Done.')),
  tools: [wait],
});
`;
const STORE_MODULE = join(REPO_ROOT, 'out', 'src', 'runtime', 'store', 'sqliteStore.js');

/** Overwrites `count` pages in the middle of an SQLite file with random bytes, as a failing disk might. */
function overwritePages(db: string, count: number): void {
  const pageSize = ((size) => (size === 1 ? 65_536 : size))(readFileSync(db).readUInt16BE(16));
  const pages = statSync(db).size / pageSize;
  const fd = openSync(db, 'r+');
  try {
    writeSync(fd, randomBytes(count * pageSize), 0, count * pageSize, (Math.floor(pages / 2) - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** Opens the database in another process, which says `open` on stderr and then does what `then` says. */
function holdOpen(db: string, then: 'hang' | 'exit') {
  const script = `const store = require(${JSON.stringify(STORE_MODULE)}).openSqliteStore(${JSON.stringify(db)});
store.markInterrupted(() => true, Date.now()).then(() => {
  process.stderr.write('open\\n');
  ${then === 'exit' ? 'process.exit(0);' : 'setInterval(() => undefined, 1000);'}
});`;
  return spawnNode('-e', [script]);
}

describe('opening the SQLite store', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();

  async function recordedDatabase(runs: number): Promise<string> {
    const db = join(tempDir('keel-open-'), 'keel.db');
    const store = openSqliteStore(db);
    const { agent, file } = await loadAgentFile(TRAVEL);
    const runtime = new Runtime({ store });
    for (let index = 0; index < runs; index++) {
      assert.equal((await (await runtime.start(agent, { input: 'Fly NYC to LIS on 2026-12-10', agentFile: file })).done).state, 'completed');
    }
    await store.close();
    return db;
  }

  it('reads the whole file only the first time: a database Keel closed cleanly is not checked again', async () => {
    const db = join(tempDir('keel-open-'), 'keel.db');
    const first = openSqliteStore(db);
    assert.equal(first.checkedBecause, 'Keel has not closed it here before');
    await first.close();
    for (let open = 0; open < 3; open++) {
      const store = openSqliteStore(db);
      assert.equal(store.checkedBecause, undefined, `open ${open + 2} finds it as it was left`);
      await store.close();
    }
  });

  it('checks it after a process that had it open was killed, and only until a check has passed', async () => {
    const db = await recordedDatabase(2);
    const holder = holdOpen(db, 'hang');
    await holder.stderrIncludes('open');
    // While that process lives, it has the database open: nothing says it is damaged.
    const meanwhile = openSqliteStore(db);
    assert.equal(meanwhile.checkedBecause, undefined);
    await meanwhile.close();
    holder.child.kill('SIGKILL');
    await within(holder.exited, 'the killed process exiting');

    const after = openSqliteStore(db);
    assert.match(after.checkedBecause ?? '', /^a process that had it open ended without closing it \(.+ pid \d+\)$/);
    assert.equal((await after.listRuns()).length, 2, 'nothing was lost');
    await after.close();
    const next = openSqliteStore(db);
    assert.equal(next.checkedBecause, undefined, 'once checked and closed cleanly, it is not checked again');
    await next.close();
  });

  it('leaves it clean when a process exits without closing it', async () => {
    const db = await recordedDatabase(1);
    const holder = holdOpen(db, 'exit');
    assert.equal((await within(holder.exited, 'the process exiting')).code, 0, holder.stderr());
    const store = openSqliteStore(db);
    assert.equal(store.checkedBecause, undefined);
    await store.close();
  });

  it('checks a file that changed while no Keel process had it open, and refuses it when it is damaged', async () => {
    const db = await recordedDatabase(40);
    overwritePages(db, 2);
    assert.throws(() => openSqliteStore(db), /Keel cannot read its database .* \(it is damaged: .+\)\. Move the file aside/);
  });

  describe('keel doctor', () => {
    it('says a healthy database is healthy, in sentences, and changes nothing', async () => {
      const db = await recordedDatabase(3);
      const before = readFileSync(db);
      const result = await runNode(KEEL, ['doctor', '--db', db]);
      assert.equal(result.code, 0, describeOutcome(result));
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines[0], db);
      assert.ok(lines.includes('✓ It was closed cleanly, and has not changed since, so opening it does not read it in full.'), result.stdout);
      assert.ok(lines.some((line) => /^✓ It is a Keel database with the current schema \(version \d+\)\.$/.test(line)), result.stdout);
      assert.ok(lines.some((line) => /^✓ SQLite read all of its [\d.]+ KB and found every page and index intact\.$/.test(line)), result.stdout);
      assert.ok(lines.includes('✓ No run was left unfinished by a process that is gone.'), result.stdout);
      assert.deepEqual(readFileSync(db), before, 'doctor only reads');
      assert.deepEqual(readdirSync(join(db, '..')).sort(), ['keel.db', 'keel.db-sessions']);
    });

    it('finds a damaged database, says what is wrong and what to do, and exits 1', async () => {
      const db = await recordedDatabase(40);
      overwritePages(db, 1);
      const result = await runNode(KEEL, ['doctor', '--db', db]);
      assert.equal(result.code, 1, describeOutcome(result));
      assert.match(result.stdout, /^• The next command to open it checks it in full first: it changed while no Keel process had it open\.$/m);
      assert.match(
        result.stdout,
        /^✗ SQLite (found .*keel\.db damaged \((\d+|20 or more) problem.*, such as: .+\)|could not finish reading .*keel\.db \(.+\): it is damaged)\. Keel refuses to write to it after a crash; restore it from a backup/m,
      );
      assert.equal(result.stderr, '');
    });

    it('tells of a run whose process was killed mid-run', async () => {
      const dir = tempDir('keel-doctor-');
      const db = join(dir, 'keel.db');
      const agentFile = join(dir, 'waits.agent.ts');
      writeFileSync(agentFile, HANGING_AGENT);
      const holder = spawnNode(KEEL, ['run', agentFile, '--input', 'go', '--db', db], { cwd: dir });
      await within(
        new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (`${holder.stdout()}${holder.stderr()}`.includes('waiting started')) {
              clearInterval(timer);
              resolve();
            }
          }, 20);
        }),
        'the run reaching its tool',
      );
      holder.child.kill('SIGKILL');
      await within(holder.exited, 'the killed run exiting');
      const result = await runNode(KEEL, ['doctor', '--db', db]);
      assert.equal(result.code, 0, describeOutcome(result));
      assert.match(result.stdout, /^• process \d+ on .+ ended without closing it \(a crash or a kill\); the next command to open it checks it in full first, as this one does now\.$/m);
      assert.match(result.stdout, /^• 1 run\(s\) are marked running but their process is gone \(run_\w+\); the next `keel runs` marks them interrupted, and `keel resume` continues them\.$/m);
    });
  });
});
