import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DecisionRequest } from '../../src/runtime/approval/decide';
import type { BudgetPool } from '../../src/runtime/budget/budget';
import type { ApprovalRecord, RunRecord } from '../../src/runtime/store/checkpointStore';
import { approvalsOfTree } from '../../src/runtime/store/runTree';
import { startConformanceApi, type ConformanceApi } from '../support/conformanceApi';
import { localPglite, localPostgres, localSqlite, restateOn, sharedPostgres, type EngineBackend, type EngineHarness, type SuiteContext } from '../support/engineBackends';
import { showRun } from '../support/keelCli';
import { decodeExport, startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../support/otlpReceiver';
import { REPO_ROOT, within } from '../support/processes';

/**
 * One set of scenarios, run against every engine Keel runs agents on: the local engine on SQLite,
 * on PostgreSQL in PGlite and on a real PostgreSQL server, and the Restate engine (a real
 * restate-server, the agents served by `keel serve --engine restate`) on SQLite and on
 * PostgreSQL. The same agent files run unchanged on all of them, and must behave the same: a run
 * completes; a run whose executor is killed while a payment is in flight goes on and pays once;
 * a run cancelled mid-call ends cancelled; an approval survives a restart of everything; runs
 * sharing a budget never overspend it; a transient failure is retried and a permanent one is not.
 */

const FIXTURES = join(REPO_ROOT, 'test', 'conformance', 'fixtures');
const agentFile = (name: string) => join(FIXTURES, `${name}.agent.ts`);
const WAIT = { timeoutMs: 30_000 };
const BY = { by: 'conformance', via: 'cli', at: 0 } as const;
const CONCURRENT = 8;

let api: ConformanceApi;
let otlp: OtlpReceiver;
const postgres = sharedPostgres();
const context: SuiteContext = {
  get env() {
    return { KEEL_CONFORMANCE_API: api.url, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url };
  },
  postgres: () => postgres.get(),
};

before(async () => {
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  api = await startConformanceApi();
  otlp = await startOtlpReceiver();
  // Runs the local engines execute in this process call the API too.
  process.env['KEEL_CONFORMANCE_API'] = api.url;
});

after(async () => {
  delete process.env['KEEL_CONFORMANCE_API'];
  await api.close();
  await otlp.close();
  postgres.stop();
});

const BACKENDS: readonly EngineBackend[] = [
  localSqlite(context),
  localPglite(),
  localPostgres(context),
  restateOn('SQLite', context, FIXTURES),
  restateOn('PostgreSQL', context, FIXTURES),
];

async function pendingApproval(h: EngineHarness, runId: string): Promise<ApprovalRecord> {
  const [approval, ...more] = await h.store.listApprovals({ runId, status: 'pending' });
  assert.ok(approval, `run ${runId} waits for no decision`);
  assert.deepEqual(more, [], `run ${runId} waits for more than one decision`);
  return approval;
}

function approve(approval: ApprovalRecord): DecisionRequest {
  return { action: 'approve', argsHash: approval.argsHash };
}

/** The spans exported for a trace, once they have arrived. */
async function exportedSpans(traceId: string): Promise<DecodedSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const spans = otlp.requests.flatMap((request) => decodeExport(request).spans).filter((span) => span.traceId === traceId);
    if (spans.length > 0) return spans;
    if (Date.now() > deadline) throw new Error(`no spans of trace ${traceId} arrived within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function described(run: RunRecord): string {
  return `${run.state}: ${run.error ?? run.result ?? ''}`;
}

for (const backend of BACKENDS) {
  describe(`engine conformance: ${backend.name}`, function () {
    this.timeout(90_000);
    let h: EngineHarness;

    before(async function () {
      this.timeout(120_000);
      const missing = await backend.setUp();
      if (missing) {
        // Provisioning (.ci/provision.sh) installs what every backend needs; a machine without it says why.
        console.log(`      skipped: ${missing}`);
        this.skip();
      }
      h = backend.harness();
    });

    after(() => backend.tearDown());

    it('completes a run, journaled step by step where `keel show` reads it, its trace exported where the executor exports', async () => {
      const runId = await h.engine.start({ agentFile: agentFile('lookup'), input: 'keel' });
      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'completed', described(run));
      assert.equal(run.result, 'Looked up keel and keels: keels: a word of 5 letters');
      const steps = await h.store.getSteps(runId);
      assert.deepEqual(
        steps.map((step) => `${step.seq} ${step.kind} ${step.status}`),
        ['1 model completed', '2 tool completed', '3 model completed', '4 tool completed', '5 model completed'],
      );
      assert.deepEqual(
        steps.filter((step) => step.kind === 'tool').map((step) => step.idempotencyKey),
        [`${runId}:1:0`, `${runId}:3:0`],
      );
      if (h.exportsTraces) {
        const names = (await exportedSpans(run.traceId)).map((span) => span.name.split(' ')[0]).sort();
        assert.deepEqual(names, ['chat', 'chat', 'chat', 'execute_tool', 'execute_tool', 'invoke_agent']);
      }
      if (h.location) {
        const shown = await showRun(runId, h.location);
        assert.equal(shown.run.state, 'completed');
        assert.equal(shown.run.result, run.result);
        assert.equal(shown.steps.length, 5);
      }
    });

    it('goes on after its executor is killed while a payment is in flight, and pays exactly once', async () => {
      const held = api.holdNextPay();
      const killable = await h.startKillable({ agentFile: agentFile('transfer'), input: 'Send 250' });
      const { runId } = killable;
      const charge = await within(held, 'the payment reaching the API', 30_000);
      await killable.kill();
      await h.recover(runId);

      // The payment may or may not have happened, as far as Keel knows: a person decides.
      const paused = await h.engine.wait(runId, WAIT);
      assert.equal(paused.state, 'waiting_approval', described(paused));
      const approval = await pendingApproval(h, runId);
      assert.equal(approval.kind, 'unknown_outcome');
      assert.equal(approval.tool, 'pay');
      await h.engine.decide(approval.id, approve(approval), { ...BY, at: Date.now() });

      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'completed', described(run));
      assert.equal(run.result, `Paid: ${charge.confirmation}`);
      // Retried under the same idempotency key: the API answered with the first charge.
      assert.deepEqual(api.requestsOf(runId, '/pay'), [`/pay ${charge.key} charged`, `/pay ${charge.key} replayed`]);
      assert.equal(api.charges.filter((made) => made.key.startsWith(`${runId}:`)).length, 1);
      // The quote had completed before the kill: it was not asked again.
      assert.equal(api.requestsOf(runId, '/quote').length, 1);
      const effects = await h.store.getEffects(runId);
      assert.deepEqual(
        effects.map((effect) => `${effect.tool} ${effect.status}`),
        ['quote completed', 'pay completed'],
      );
    });

    it('cancels a run while a call is in flight, and the run ends cancelled', async () => {
      const held = api.holdNextPay();
      const runId = await h.engine.start({ agentFile: agentFile('transfer'), input: 'Send 75' });
      await within(held, 'the payment reaching the API', 30_000);
      await h.engine.cancel(runId);
      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'cancelled', described(run));
      const steps = await h.store.getSteps(runId);
      assert.deepEqual(
        steps.map((step) => `${step.seq} ${step.kind === 'tool' ? `tool ${step.name}` : 'model'} ${step.status}`),
        ['1 model completed', '2 tool quote completed', '3 model completed', '4 tool pay failed'],
      );
    });

    it('pauses for an approval, keeps it across a restart of everything, and finishes once it is approved', async () => {
      const { runId } = await h.startKillable({ agentFile: agentFile('purchase'), input: 'Buy for 500' });
      const paused = await h.engine.wait(runId, WAIT);
      assert.equal(paused.state, 'waiting_approval', described(paused));

      await h.restart();

      const approval = await pendingApproval(h, runId);
      assert.equal(approval.kind, 'policy');
      assert.equal(approval.summary, '$500');
      assert.deepEqual(api.requestsOf(runId, '/buy'), [], 'the purchase was made before it was approved');
      await h.engine.decide(approval.id, approve(approval), { ...BY, at: Date.now() });
      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'completed', described(run));
      const [bought] = api.charges.filter((made) => made.key.startsWith(`${runId}:`));
      assert.equal(run.result, `Bought: ${bought?.confirmation ?? '?'}`);
      assert.equal(api.requestsOf(runId, '/buy').length, 1);
      const decided = await h.store.getApproval(approval.id);
      assert.equal(decided?.status, 'decided');
      assert.equal(decided?.decidedBy, 'conformance');
    });

    it('pauses a run for its sub-agent’s approval, and finishes the tree once that is approved, buying once', async () => {
      const { runId } = await h.startKillable({ agentFile: agentFile('errand'), input: 'Buy for 300' });
      const paused = await h.engine.wait(runId, WAIT);
      assert.equal(paused.state, 'waiting_approval', described(paused));
      assert.match(paused.error ?? '', /^The buyer sub-agent \(run run_\w+\) is waiting for a decision: over \$100$/);
      const [approval, ...more] = await approvalsOfTree(h.store, runId, 'pending');
      assert.ok(approval && more.length === 0, 'one decision waits, the sub-agent’s');
      assert.equal(approval.agent, 'buyer');
      assert.notEqual(approval.runId, runId);

      await h.engine.decide(approval.id, approve(approval), { ...BY, at: Date.now() });
      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'completed', described(run));
      const [bought] = api.charges.filter((made) => made.key.startsWith(`${approval.runId}:`));
      assert.equal(run.result, `Errand done: ${bought?.confirmation ?? '?'}`);
      assert.equal(api.requestsOf(approval.runId, '/buy').length, 1);
      assert.equal((await h.store.getRun(approval.runId))?.state, 'completed');
    });

    it(`never lets ${CONCURRENT} runs at once spend more than the budget they share`, async () => {
      // What one run spends when nothing stops it: the shared budget holds enough for about three.
      const calibration = await h.engine.wait(await h.engine.start({ agentFile: agentFile('lookup'), input: 'budget' }), WAIT);
      assert.equal(calibration.state, 'completed', described(calibration));
      const perRun = calibration.usage.inputTokens + calibration.usage.outputTokens;
      const limit = perRun * 3;
      const pool: BudgetPool = { id: `conformance-${Date.now().toString(36)}`, limits: { tokens: limit } };

      // Watch the shared budget while the runs go: spent and held together never pass the limit.
      const samples: number[] = [];
      let watching = true;
      // Runs on an in-process store can all end within a few milliseconds, so it samples often, and
      // at least once after they end.
      const watch = (async () => {
        while (watching || samples.length === 0) {
          const [budget] = await h.store.getBudgets([`pool:${pool.id}`]);
          if (budget) samples.push(budget.spent.inputTokens + budget.spent.outputTokens + budget.reserved.inputTokens + budget.reserved.outputTokens);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const ids = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, index) => h.engine.start({ agentFile: agentFile('lookup'), input: `word${index}`, pools: [pool] })),
      );
      const runs = await Promise.all(ids.map((id) => h.engine.wait(id, WAIT)));
      watching = false;
      await watch;

      assert.deepEqual(
        runs.filter((run) => run.state !== 'completed' && run.state !== 'budget_exceeded').map(described),
        [],
        'every run completes or stops at the budget',
      );
      assert.ok(runs.some((run) => run.state === 'budget_exceeded'), 'the budget held enough for every run');
      const [budget] = await h.store.getBudgets([`pool:${pool.id}`]);
      assert.ok(budget, 'the shared budget was never created');
      const spent = budget.spent.inputTokens + budget.spent.outputTokens;
      assert.ok(spent <= limit, `spent ${spent} tokens of a ${limit}-token budget`);
      assert.deepEqual(budget.reserved, { inputTokens: 0, outputTokens: 0, usd: 0 }, 'reservations still held');
      assert.equal(spent, runs.reduce((sum, run) => sum + run.usage.inputTokens + run.usage.outputTokens, 0), 'the budget and the runs disagree on what was spent');
      assert.ok(Math.max(...samples) <= limit, `spent and held reached ${Math.max(...samples)} tokens of a ${limit}-token budget`);
      const reservations = (await h.store.listReservations()).filter((reservation) => ids.includes(reservation.runId));
      assert.deepEqual(reservations.filter((reservation) => reservation.status === 'held'), []);
      if (h.reservationsSerializedFor) {
        // Every reservation on the shared budget was made by the engine, one at a time. (A call that
        // waited for calls in flight asks again once they settle, and a call that cannot fit even
        // with nothing held stops on what the budget says, without asking.)
        const onPool = reservations.filter((reservation) => reservation.budgetIds.includes(`pool:${pool.id}`));
        const serialized = await h.reservationsSerializedFor(`pool:${pool.id}`);
        assert.ok(serialized >= onPool.length, `${serialized} reservations went through the engine, fewer than the ${onPool.length} made`);
      }
    });

    it('tries a 503 again until it succeeds and takes a 400 as final', async () => {
      const runId = await h.engine.start({ agentFile: agentFile('flaky'), input: `order-${Date.now().toString(36)}` });
      const run = await h.engine.wait(runId, WAIT);
      assert.equal(run.state, 'completed', described(run));
      assert.equal(run.result, 'status: ok, cancel: failed');
      const steps = await h.store.getSteps(runId);
      const status = steps.find((step) => step.name === 'status');
      const cancel = steps.find((step) => step.name === 'cancel');
      assert.equal(status?.status, 'completed');
      assert.equal(status?.attempts, 3);
      assert.deepEqual(
        status?.failedAttempts.map((failure) => `${failure.attempt} ${failure.class} ${failure.reason} ${failure.delayMs === undefined ? 'final' : 'then retried'}`),
        ['1 retry HTTP 503 then retried', '2 retry HTTP 503 then retried'],
      );
      assert.equal(cancel?.status, 'failed');
      assert.deepEqual(
        cancel?.failedAttempts.map((failure) => `${failure.attempt} ${failure.class} ${failure.reason} ${failure.delayMs === undefined ? 'final' : 'then retried'}`),
        ['1 never HTTP 400 final'],
      );
      assert.match(cancel?.error ?? '', /400/);
      assert.equal(api.requestsOf(runId, '/flaky').length, 3);
      assert.equal(api.requestsOf(runId, '/strict').length, 1);
    });
  });
}
