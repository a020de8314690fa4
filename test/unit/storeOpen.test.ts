import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { REPO_ROOT, spawnNode, within } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
const STORE_MODULE = join(REPO_ROOT, 'out', 'src', 'runtime', 'store', 'sqliteStore.js');

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
    const pageSize = ((size) => (size === 1 ? 65_536 : size))(readFileSync(db).readUInt16BE(16));
    const pages = statSync(db).size / pageSize;
    const fd = openSync(db, 'r+');
    try {
      writeSync(fd, randomBytes(2 * pageSize), 0, 2 * pageSize, (Math.floor(pages / 2) - 1) * pageSize);
    } finally {
      closeSync(fd);
    }
    assert.throws(() => openSqliteStore(db), /Keel cannot read its database .* \(it is damaged: .+\)\. Move the file aside/);
  });
});
