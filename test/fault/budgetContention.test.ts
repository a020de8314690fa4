import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import type { BudgetPool } from '../../src/runtime/budget/budget';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { openaiModel } from '../../src/runtime/model/openai';
import { scriptedModel } from '../../src/runtime/model/scripted';
import type { BudgetRecord, CheckpointStore, ReservationRecord, StepTransition } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { startOpenAIServer, type RecordedRequest, type ServerReply } from '../support/openaiServer';
import { maxTokensOf, openaiPromptTokens } from '../support/openaiTokens';
import { useTempDirs } from '../support/tempDir';

const WORKERS = 120;
/** Each worker looks something up twice, then answers: three model calls if its budget lets it. */
const LOOKUPS = 2;
const MAX_OUTPUT_TOKENS = 400;
const COMPLETION_TOKENS = 300;
/** How many first calls the shared budget can hold at once: the rest are refused from the start. */
const FIRST_WAVE = 105;
const POOL_ID = 'contention';
/** Float sums of many small amounts: what "equal" means for dollars here. */
const EPSILON = 1e-12;

/**
 * 120 sub-agent runs, started at once by one tool of a parent run, make their model calls through
 * the real `openai` SDK against the local server (priced as gpt-4o-mini). All of them draw on one
 * money budget (the parent run's), and on a shared pool. After every write to the store, neither
 * budget may have spent plus held more than its limit; once the budget is used up, runs stop
 * `budget_exceeded`; at the end nothing is held and what was spent is what the calls settled.
 */
describe('budget contention: 120 sub-agents share one money budget', function () {
  this.timeout(300_000);
  const tempDir = useTempDirs();

  it('never lets settled and held spend pass the budget, stops runs once it is used up, and leaves nothing held', async () => {
    let inFlight = 0;
    let peakInFlight = 0;
    const server = await startOpenAIServer({
      respond: async (request) => {
        inFlight += 1;
        peakInFlight = Math.max(peakInFlight, inFlight);
        // Long enough for every worker to have made its first call before any is answered.
        await new Promise((resolve) => setTimeout(resolve, 400 + Math.floor(Math.random() * 200)));
        inFlight -= 1;
        return reply(request);
      },
    });
    const stores: SqliteStore[] = [];
    try {
      const model = openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test' });
      const worker = workerAgent(model);

      // The worst case of one worker's first call, as the runtime reserves it.
      const calibration = openSqliteStore(join(tempDir('keel-contention-calibrate-'), 'keel.db'));
      stores.push(calibration);
      const sample = await (await new Runtime({ store: calibration }).start(worker, { input: task(0), budget: { usd: 1 } })).done;
      assert.equal(sample.state, 'completed', sample.error ?? '');
      const firstCall = (await calibration.listReservations({ runId: sample.id }))[0]?.amounts.usd ?? 0;
      assert.ok(firstCall > 0, 'the calibration run reserved nothing');
      const calibrationCalls = server.requests.length;

      const limit = firstCall * (FIRST_WAVE + 0.5);
      const pool: BudgetPool = { id: POOL_ID, limits: { usd: limit * 1.25 } };
      const store = openSqliteStore(join(tempDir('keel-contention-'), 'keel.db'));
      stores.push(store);
      const watch = new BudgetWatch(store);
      const runtime = new Runtime({ store: watch.store, pools: [pool] });

      const started = Date.now();
      const parent = await (await runtime.start(dispatcherAgent(worker), { input: `Run ${WORKERS} workers.`, budget: { usd: limit } })).done;
      const seconds = (Date.now() - started) / 1000;
      assert.equal(parent.state, 'completed', parent.error ?? '');

      const children = await store.childRuns(parent.id);
      assert.equal(children.length, WORKERS);
      const states = count(children.map((child) => child.state));
      assert.deepEqual(
        children.filter((child) => child.state !== 'completed' && child.state !== 'budget_exceeded').map((child) => `${child.id} ${child.state}: ${child.error ?? ''}`),
        [],
      );
      assert.ok((states['budget_exceeded'] ?? 0) > 0, 'no run stopped at the budget');
      for (const child of children.filter((run) => run.state === 'budget_exceeded')) {
        assert.match(child.error ?? '', /^Stopped: (The next model call (needs at least \$[\d.]+ \(its input and 256 output tokens\)|could cost up to \$[\d.]+), which would take the (run's|shared budget contention's) money budget|The model's answer was cut off at \d+ output tokens, all that (a parent run's budget|the shared budget contention) had room for\.)/);
      }

      // At least 100 model calls were under way at once, all drawing on the one budget.
      assert.ok(peakInFlight >= 100, `only ${peakInFlight} model calls were in flight at once`);
      assert.ok(watch.peakHeld >= 100, `only ${watch.peakHeld} reservations were held at once`);

      // After every write: spent plus held within each limit (checked as it ran), and the same
      // replayed from the reservations table.
      assert.deepEqual(watch.violations, []);
      const budgetIds = [`run:${parent.id}`, `pool:${POOL_ID}`];
      const reservations = (await store.listReservations()).filter((reservation) => reservation.budgetIds.includes(budgetIds[0] ?? ''));
      const replayed = replay(reservations);
      assert.ok(replayed.peak <= limit + EPSILON, `replayed from the reservations table, spent and held reached ${replayed.peak} of ${limit}`);

      // Nothing is left held, and the budgets spent exactly what the calls settled.
      assert.deepEqual(await store.listReservations({ status: 'held' }), []);
      const settled = reservations.reduce((sum, reservation) => sum + (reservation.actual?.usd ?? 0), 0);
      const [runBudget, poolBudget] = await store.getBudgets(budgetIds);
      for (const budget of [runBudget, poolBudget]) {
        assert.ok(budget);
        // Held dollars are added and taken away as floats: what is left is rounding, not money.
        assert.deepEqual({ ...budget.reserved, usd: Math.abs(budget.reserved.usd) < EPSILON ? 0 : budget.reserved.usd }, { inputTokens: 0, outputTokens: 0, usd: 0 }, `${budget.id} still holds something`);
        assert.ok(Math.abs(budget.spent.usd - settled) < EPSILON, `${budget.id} spent ${budget.spent.usd}, the calls settled ${settled}`);
        assert.ok(budget.spent.usd <= (budget.limits.usd ?? 0) + EPSILON, `${budget.id} spent ${budget.spent.usd} of ${budget.limits.usd}`);
      }
      const recorded = children.reduce((sum, child) => sum + child.costUsd, 0) + parent.costUsd;
      assert.ok(Math.abs(recorded - settled) < EPSILON, `the runs recorded ${recorded}, the calls settled ${settled}`);
      assert.ok(settled >= limit * 0.9, `the budget was not used up: ${settled} of ${limit}`);

      const workerCalls = reservations.filter((reservation) => reservation.model === 'openai:gpt-4o-mini');
      assert.equal(workerCalls.length, server.requests.length - calibrationCalls, 'a model call was made without a reservation');
      console.log(
        `      budget contention: ${WORKERS} sub-agents made ${workerCalls.length} model calls over HTTP, each reserved first ` +
          `(${workerCalls.filter((reservation) => reservation.status === 'released').length} released) in ${seconds.toFixed(1)} s; ` +
          `${states['completed'] ?? 0} completed, ${states['budget_exceeded'] ?? 0} stopped budget_exceeded\n` +
          `      budget $${limit.toFixed(6)} (pool $${(pool.limits.usd ?? 0).toFixed(6)}); peak reserved $${watch.peakReservedUsd.toFixed(6)} ` +
          `in ${watch.peakHeld} calls held at once (${peakInFlight} requests in flight at the server); ` +
          `peak spent+held $${watch.peakCommitted.toFixed(6)} (${((watch.peakCommitted / limit) * 100).toFixed(1)}% of the budget); ` +
          `final spend $${settled.toFixed(6)} (${((settled / limit) * 100).toFixed(1)}%)`,
      );
    } finally {
      for (const store of stores) await store.close();
      await server.close();
    }
  });
});

function task(index: number): string {
  // The same length for every worker, so that their calls reserve the same worst case.
  return `Research topic ${String(index).padStart(3, '0')}.`;
}

function workerAgent(model: ReturnType<typeof openaiModel>): Agent {
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks a fact up.',
    args: z.object({ n: z.number().int() }),
    effect: 'none',
    run: ({ n }) => `fact ${n}`,
  });
  return defineAgent({
    name: 'worker',
    instructions: 'Look two facts up, then answer in one sentence.',
    model,
    tools: [lookup],
    maxOutputTokens: MAX_OUTPUT_TOKENS,
  });
}

/** A parent whose one tool starts every worker at once, as sub-agents, and waits for them all. */
function dispatcherAgent(worker: Agent): Agent {
  const fanOut = defineTool({
    name: 'fan_out',
    description: 'Runs the workers in parallel.',
    args: z.object({ count: z.number().int() }),
    effect: 'idempotent',
    run: async ({ count }, ctx) => {
      const outcomes = await Promise.allSettled(Array.from({ length: count }, (_, index) => ctx.subAgent(worker, task(index))));
      const answered = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
      return `${answered} workers answered, ${count - answered} stopped.`;
    },
  });
  return defineAgent({
    name: 'dispatcher',
    instructions: 'Fan out.',
    model: scriptedModel([{ toolCalls: [{ name: 'fan_out', args: { count: WORKERS } }] }, 'All workers ran.']),
    tools: [fanOut],
  });
}

/**
 * The server's part of a worker: look up twice, then answer. Usage as OpenAI counts it, with
 * COMPLETION_TOKENS of output (thinking included) kept to the output limit the request sent: an
 * answer that needs more is cut off there, as the API cuts it.
 */
function reply(request: RecordedRequest): ServerReply {
  const lookups = request.body.messages.filter((message) => message.role === 'tool').length;
  const limit = maxTokensOf(request.body) ?? Number.POSITIVE_INFINITY;
  const usage = { prompt_tokens: openaiPromptTokens(request.body), completion_tokens: Math.min(COMPLETION_TOKENS, limit) };
  if (limit < COMPLETION_TOKENS) return { content: 'Both facts', usage, finishReason: 'length' };
  if (lookups < LOOKUPS) return { toolCalls: [{ name: 'lookup', arguments: JSON.stringify({ n: lookups + 1 }) }], usage };
  return { content: 'Both facts point the same way.', usage };
}

/**
 * The store the runtime uses, watched: after every transition (the only writes that reserve or
 * settle), the budgets are read back and checked, and the peaks kept.
 */
class BudgetWatch {
  readonly store: CheckpointStore;
  readonly violations: string[] = [];
  peakReservedUsd = 0;
  peakCommitted = 0;
  peakHeld = 0;
  private held = 0;
  private budgetIds: string[] = [];

  constructor(private readonly inner: SqliteStore) {
    // Every other method is the store's own (its prototype); only transition is watched.
    this.store = Object.assign(Object.create(inner) as SqliteStore, {
      transition: (change: StepTransition): Promise<void> => {
        const result = inner.transition(change);
        this.observe(change);
        return result;
      },
    });
  }

  private observe(change: StepTransition): void {
    if (change.reserve) {
      this.held += 1;
      for (const id of change.reserve.budgetIds) if (!this.budgetIds.includes(id)) this.budgetIds.push(id);
    }
    if (change.close) this.held -= 1;
    this.peakHeld = Math.max(this.peakHeld, this.held);
    // better-sqlite3 answers synchronously: these are the rows as this transition left them.
    void this.inner.getBudgets(this.budgetIds).then((budgets) => {
      for (const budget of budgets) this.check(budget);
    });
  }

  private check(budget: BudgetRecord): void {
    const limit = budget.limits.usd;
    if (limit === undefined) return;
    const committed = budget.spent.usd + budget.reserved.usd;
    if (budget.id.startsWith('run:')) {
      this.peakReservedUsd = Math.max(this.peakReservedUsd, budget.reserved.usd);
      this.peakCommitted = Math.max(this.peakCommitted, committed);
    }
    if (committed > limit + EPSILON) this.violations.push(`${budget.id}: spent ${budget.spent.usd} + held ${budget.reserved.usd} > ${limit}`);
  }
}

/**
 * Spent plus held over time, replayed from the reservations table: a reservation adds its amount
 * when made; closing it takes that away and adds what was settled. Closes at the same millisecond
 * as a reservation come first (a reservation that fitted because a call settled came after it).
 */
function replay(reservations: readonly ReservationRecord[]): { peak: number } {
  const events: { at: number; order: number; delta: number }[] = [];
  for (const reservation of reservations) {
    events.push({ at: reservation.createdAt, order: 1, delta: reservation.amounts.usd });
    if (reservation.closedAt !== null) events.push({ at: reservation.closedAt, order: 0, delta: (reservation.actual?.usd ?? 0) - reservation.amounts.usd });
  }
  events.sort((a, b) => a.at - b.at || a.order - b.order);
  let committed = 0;
  let peak = 0;
  for (const event of events) {
    committed += event.delta;
    peak = Math.max(peak, committed);
  }
  return { peak };
}

function count(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
