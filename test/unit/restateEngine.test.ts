import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { RunEvent } from '../../src/runtime/agent/events';
import { isOwnerAlive } from '../../src/runtime/agent/owner';
import { AttemptInterruptedError } from '../../src/runtime/agent/steps';
import { argsHash } from '../../src/runtime/approval/decide';
import { BudgetExceededError } from '../../src/runtime/budget/budget';
import { DEFAULT_TOOL_RETRY, NonRetryableError, RetryableError, classifyError } from '../../src/runtime/effects/retry';
import { followRun } from '../../src/runtime/engine/followRun';
import { Host } from '../../src/runtime/host/host';
import { RestateEngine } from '../../src/runtime/engine/restateEngine';
import { decodeError, encodeError } from '../../src/runtime/engine/restate/errorCodec';
import { outcomeOf, valueOf } from '../../src/runtime/engine/restate/outcome';
import { StoreError } from '../../src/runtime/errors';
import type { CheckpointStore } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { freePort } from '../support/postgresServer';
import { REPO_ROOT, runNode, testEnv } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');
const LOOKUP = join(REPO_ROOT, 'test', 'conformance', 'fixtures', 'lookup.agent.ts');

describe('Restate engine, without a Restate server', function () {
  this.timeout(30_000);
  const tempDir = useTempDirs();

  describe('errors crossing a journaled step', () => {
    const http503 = Object.assign(new Error('the service answered 503'), { status: 503 });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const cases: readonly [string, Error][] = [
      ['a RetryableError with Retry-After', new RetryableError('busy', { retryAfterMs: 1500 })],
      ['a NonRetryableError', new NonRetryableError('refused')],
      ['an HTTP 503', http503],
      ['a dropped connection', reset],
      ['a store error', new StoreError('the database is read-only')],
      ['a plain error', new TypeError('x is not a function')],
    ];
    for (const [what, error] of cases) {
      it(`keeps ${what} classified as it was, with its message and name`, () => {
        const decoded = decodeError(JSON.parse(JSON.stringify(encodeError(error))) as ReturnType<typeof encodeError>);
        assert.deepEqual(classifyError(decoded, DEFAULT_TOOL_RETRY), classifyError(error, DEFAULT_TOOL_RETRY));
        assert.equal(decoded.message, error.message);
        assert.equal(decoded.name, error.name);
      });
    }

    it('gives budget and interrupted-attempt errors back as themselves', () => {
      const budget = decodeError(encodeError(new BudgetExceededError('over the pool', 'pool:daily', 'usd')));
      assert.ok(budget instanceof BudgetExceededError);
      assert.equal(budget.budgetId, 'pool:daily');
      assert.equal(budget.dimension, 'usd');
      assert.ok(decodeError(encodeError(new AttemptInterruptedError('began before'))) instanceof AttemptInterruptedError);
    });

    it('records a value as the JSON a replay reads, and leaves a transient store failure to Restate', async () => {
      const outcome = await outcomeOf(() => Promise.resolve({ at: new Date(0), gone: undefined, n: 1 }), 'final');
      assert.deepEqual(valueOf(outcome), { at: '1970-01-01T00:00:00.000Z', n: 1 });
      await assert.rejects(outcomeOf(() => Promise.reject(reset), 'final'), /socket hang up/);
      const recorded = await outcomeOf(() => Promise.reject(reset), 'all');
      assert.throws(() => valueOf(recorded), /socket hang up/);
    });
  });

  it('treats runs Restate executes as alive, so no local process marks them interrupted', () => {
    assert.equal(isOwnerAlive('restate/run_01abc/3f2a9c'), true);
  });

  it('says restate-server is not reachable, and how to start it, when a run is started without one', async () => {
    const store = openSqliteStore(join(tempDir(), 'keel.db'));
    try {
      const url = `http://127.0.0.1:${await freePort()}`;
      const engine = new RestateEngine(store, { ingressUrl: url });
      await assert.rejects(
        engine.start({ agentFile: LOOKUP, input: 'keel' }),
        (error: Error) => error.message.startsWith(`restate-server is not reachable at ${url} (`) && /npx restate-server/.test(error.message),
      );
    } finally {
      await store.close();
    }
  });

  /** Runs the lookup fixture to its end on the local engine, then hands its store and run id to `use`. */
  async function withLocalRun(use: (store: CheckpointStore, runId: string) => Promise<void>): Promise<void> {
    const host = await Host.open({ cwd: tempDir(), flags: { db: join(tempDir(), 'keel.db') } });
    try {
      const runId = await host.local.start({ agentFile: LOOKUP, input: 'keel' });
      await host.local.wait(runId);
      await use(host.store, runId);
    } finally {
      await host.close();
    }
  }

  it('refuses to resume a local run on Restate', () =>
    withLocalRun((store, runId) => assert.rejects(new RestateEngine(store).resume(runId), /was not started on Restate; resume it with the local engine/)));

  it('follows a run through the store: its start, every step and its end', () =>
    withLocalRun(async (store, runId) => {
      const events: RunEvent[] = [];
      const stopped = await followRun(store, runId, (event) => events.push(event), { since: 0, intervalMs: 5 });
      assert.equal(stopped?.state, 'completed');
      assert.deepEqual(
        events.map((event) => ('step' in event ? `${event.type} ${event.step.seq}` : event.type)),
        ['run_started', 'step_finished 1', 'step_finished 2', 'step_finished 3', 'step_finished 4', 'step_finished 5', 'run_finished'],
      );
    }));

  describe('the CLI', () => {
    const keel = (args: readonly string[], cwd: string) => runNode(KEEL, args, { cwd, env: testEnv() });

    it('keel serve names the engine it serves on', async () => {
      const result = await keel(['serve'], tempDir());
      assert.equal(result.code, 2);
      assert.match(result.stderr, /keel serve serves agents on Restate: keel serve --engine restate \(or engine\.kind in keel\.config\.ts\)\./);
    });

    it('keel serve --engine restate says restate-server is not reachable at its admin URL', async () => {
      const admin = `http://127.0.0.1:${await freePort()}`;
      const result = await keel(['serve', '--engine', 'restate', LOOKUP, '--port', '0', '--restate-admin', admin], tempDir());
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stderr, new RegExp(`restate-server is not reachable at ${admin} \\(.*\\): start it .*--restate-admin or KEEL_RESTATE_ADMIN_URL`));
    });

    it('keel run --engine restate says restate-server is not reachable at its ingress', async () => {
      const ingress = `http://127.0.0.1:${await freePort()}`;
      const result = await keel(['run', LOOKUP, '--input', 'keel', '--engine', 'restate', '--restate-url', ingress], tempDir());
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stderr, new RegExp(`restate-server is not reachable at ${ingress} .*--restate-url or KEEL_RESTATE_URL`));
    });

    it('keel run refuses an engine it does not know', async () => {
      const result = await keel(['run', LOOKUP, '--input', 'keel', '--engine', 'temporal'], tempDir());
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--engine must be local or restate \(got "temporal"\)/);
    });

    it('keel approve records the decision on a run Restate executes, says Restate could not be told, and passes it on when asked again', async () => {
      const dir = tempDir();
      const db = join(dir, 'keel.db');
      const store = openSqliteStore(db);
      const runId = 'run_01restateowned000000000';
      try {
        await store.createRun({ id: runId, agent: 'purchase', agentFile: null, model: 'keel.scripted:scripted', input: 'Buy for 500', traceId: '0'.repeat(32), owner: `restate/${runId}/a1b2c3`, createdAt: 1 });
        const args = { amount: 500 };
        await store.requestApproval({
          id: 'appr_restate_2',
          runId,
          seq: 2,
          kind: 'policy',
          agent: 'purchase',
          tool: 'buy',
          args,
          argsHash: argsHash(args),
          summary: '$500',
          reason: 'over $100',
          requestedAt: 2,
          deadline: null,
          onExpiry: 'reject',
          escalateTo: null,
        });
        await store.finishRun({ runId, state: 'waiting_approval', result: null, error: 'over $100', endedAt: null, at: 3 });
      } finally {
        await store.close();
      }
      const ingress = `http://127.0.0.1:${await freePort()}`;
      for (const attempt of ['first', 'second']) {
        const result = await keel(['approve', 'appr_restate_2', '--db', db, '--restate-url', ingress], dir);
        assert.equal(result.code, 1, `${attempt}: ${result.stdout}`);
        assert.match(result.stderr, new RegExp(`The decision on appr_restate_2 is recorded, but run ${runId} could not be told: restate-server is not reachable at ${ingress}`));
      }
      const reopened = openSqliteStore(db);
      try {
        const approval = await reopened.getApproval('appr_restate_2');
        assert.equal(approval?.status, 'decided');
        assert.equal(approval?.decidedVia, 'cli');
      } finally {
        await reopened.close();
      }
    });
  });
});
