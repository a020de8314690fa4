import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import { BudgetExceededError, exceeded } from '../../src/runtime/budget/budget';
import { formatUsd } from '../../src/shared/format';
import { maxInputTokens } from '../../src/runtime/model/tokens';
import { forecast, forecastAgentRun } from '../../src/runtime/budget/forecast';
import { DEFAULT_PRICES, costOf, parsePriceTable, priceOf } from '../../src/runtime/budget/prices';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import type { RunEvent } from '../../src/runtime/agent/events';
import { Runtime } from '../../src/runtime/agent/runtime';
import { agentTool } from '../../src/runtime/agent/subAgent';
import type { Model } from '../../src/runtime/model/model';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { pricedModel } from '../support/pricedModel';
import { useTempDirs } from '../support/tempDir';

describe('prices', () => {
  it('matches dated snapshots to their family, the longest name first', () => {
    assert.deepEqual(priceOf('openai', 'gpt-4o-mini-2024-07-18', [DEFAULT_PRICES]), { inputPerMTok: 0.15, outputPerMTok: 0.6 });
    assert.deepEqual(priceOf('openai', 'gpt-4o-2024-08-06', [DEFAULT_PRICES]), { inputPerMTok: 2.5, outputPerMTok: 10 });
    assert.equal(priceOf('openai', 'llama3.1', [DEFAULT_PRICES]), undefined);
    assert.deepEqual(priceOf('keel.scripted', 'anything', [DEFAULT_PRICES]), { inputPerMTok: 0, outputPerMTok: 0 });
    assert.deepEqual(priceOf('openai', 'gpt-4o', [{ 'gpt-4o': { inputPerMTok: 1, outputPerMTok: 1 } }, DEFAULT_PRICES]), { inputPerMTok: 1, outputPerMTok: 1 });
  });

  it('computes what tokens cost', () => {
    assert.equal(costOf({ inputPerMTok: 2.5, outputPerMTok: 10 }, 1_000_000, 100_000), 3.5);
    assert.equal(costOf({ inputPerMTok: 0.15, outputPerMTok: 0.6 }, 2000, 500), 0.0006);
  });

  it('refuses a price table that does not say what a million tokens cost', () => {
    assert.throws(() => parsePriceTable('{"m": {"input": 1}}', 'keel.prices'), /keel.prices: the price of "m" needs inputPerMTok and outputPerMTok/);
    assert.throws(() => parsePriceTable('not json', 'KEEL_PRICES'), /KEEL_PRICES is not JSON/);
  });
});

describe('budget arithmetic', () => {
  it('says which limit a reservation would break, with what is spent and held', () => {
    const over = exceeded(
      { id: 'run:run_1', limits: { usd: 0.5 }, spent: { inputTokens: 0, outputTokens: 0, usd: 0.45 }, reserved: { inputTokens: 0, outputTokens: 0, usd: 0.04 } },
      { inputTokens: 100, outputTokens: 100, usd: 0.02 },
    );
    assert.equal(over?.dimension, 'usd');
    assert.equal(
      over?.message,
      "The next model call could cost up to $0.02, which would take the run's money budget of $0.50 over (spent $0.45, $0.04 held by calls in flight).",
    );
    assert.equal(exceeded({ id: 'pool:daily', limits: { tokens: 1000 }, spent: { inputTokens: 400, outputTokens: 100, usd: 0 }, reserved: { inputTokens: 0, outputTokens: 0, usd: 0 } }, { inputTokens: 400, outputTokens: 100, usd: 0 }), undefined);
  });

  it('reserves at least as many input tokens as the request has bytes: a bound no tokenizer beats', () => {
    const request = { messages: [{ role: 'user' as const, content: 'héllo wörld — 日本語' }], tools: [] };
    assert.ok(maxInputTokens(request) >= Buffer.byteLength(JSON.stringify(request.messages[0])));
  });
});

describe('budgets in runs', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;
  beforeEach(() => (store = openSqliteStore(join(tempDir('keel-budget-'), 'keel.db'))));
  afterEach(() => store.close());

  const lookup = defineTool({ name: 'lookup', description: 'Looks up.', args: z.object({ n: z.number() }), effect: 'none', run: ({ n }) => `value ${n} `.repeat(50) });
  const endless: Script = ({ turn }) => ({ toolCalls: [{ name: 'lookup', args: { n: turn } }] });

  async function run(agent: Agent, options: { budget?: Parameters<Runtime['start']>[1]['budget']; events?: RunEvent[] } = {}) {
    const handle = await new Runtime({ store }).start(agent, {
      input: 'go',
      ...(options.budget ? { budget: options.budget } : {}),
      onEvent: (event) => options.events?.push(event),
    });
    return handle.done;
  }

  it('stops a run before the call that could take it over its money budget, keeping its work and saying which limit', async () => {
    const agent = defineAgent({ name: 'spender', instructions: 'Look things up.', model: pricedModel(endless), tools: [lookup], maxSteps: 100, maxOutputTokens: 500 });
    const stopped = await run(agent, { budget: { usd: 0.002 } });

    assert.equal(stopped.state, 'budget_exceeded');
    assert.match(stopped.error ?? '', /^Stopped: The next model call needs at least \$0\.\d+ \(its input and 256 output tokens\), which would take the run's money budget of \$0\.002 over/);
    assert.ok(stopped.stepCount > 4, 'the work done before the limit is kept');
    const [budget] = await store.getBudgets([`run:${stopped.id}`]);
    assert.ok(budget && budget.spent.usd <= 0.002, `spent ${budget?.spent.usd}`);
    assert.deepEqual(budget?.reserved, { inputTokens: 0, outputTokens: 0, usd: 0 }, 'nothing is left held');
    assert.equal(stopped.costUsd.toFixed(8), budget?.spent.usd.toFixed(8));
    const reservations = await store.listReservations({ runId: stopped.id });
    assert.ok(reservations.every((reservation) => reservation.status === 'settled'));
    assert.ok(reservations.every((reservation) => (reservation.actual?.usd ?? 0) <= reservation.amounts.usd));
  });

  it('stops at the step and token limits too, and warns as spending nears a limit', async () => {
    const agent = defineAgent({ name: 'stepper', instructions: '', model: pricedModel(endless), tools: [lookup], maxSteps: 100, maxOutputTokens: 200 });
    const bySteps = await run(agent, { budget: { steps: 5 } });
    assert.equal(bySteps.state, 'budget_exceeded');
    assert.equal(bySteps.error, 'Stopped: The run reached its step budget of 5 steps.');
    assert.equal(bySteps.stepCount, 5);

    const events: RunEvent[] = [];
    const byTokens = await run(agent, { budget: { tokens: 8000, warnAt: 0.1 }, events });
    assert.equal(byTokens.state, 'budget_exceeded');
    assert.match(byTokens.error ?? '', /token budget of 8,000 tokens over/);
    const warnings = events.filter((event) => event.type === 'budget_warning');
    assert.equal(warnings.length, 1, 'one warning per limit');
  });

  it('refuses to spend against a money budget with a model whose price it does not know', async () => {
    const unknown: Model = { ...scriptedModel(['hi']), provider: 'openai', name: 'my-finetune' };
    const stopped = await run(defineAgent({ name: 'x', instructions: '', model: unknown }), { budget: { usd: 1 } });
    assert.equal(stopped.state, 'budget_exceeded');
    assert.match(stopped.error ?? '', /does not know the price of openai:my-finetune/);
  });

  it('settles at the reserved maximum a call whose process died, so spend is never underestimated', async () => {
    const hanging: Model = { provider: 'openai', name: 'gpt-4o', generate: () => new Promise(() => undefined) };
    const agent = defineAgent({ name: 'hang', instructions: '', model: hanging, maxOutputTokens: 1000 });
    await new Runtime({ store, owner: 'elsewhere/999999/dead' }).start(agent, { input: 'go', budget: { usd: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [held] = await store.listReservations({ status: 'held' });
    assert.ok(held);

    const [settled] = await store.settleHeld(held.runId, 5);
    assert.deepEqual(settled?.actual, held.amounts);
    const [budget] = await store.getBudgets(held.budgetIds);
    assert.equal(budget?.spent.usd, held.amounts.usd);
    assert.equal(budget?.reserved.usd, 0);
  });

  it('stops a loop: the same call again and again, or turns with nothing new', async () => {
    const same = defineAgent({ name: 'parrot', instructions: '', model: scriptedModel(() => ({ toolCalls: [{ name: 'lookup', args: { n: 1 } }] })), tools: [lookup], maxSteps: 50 });
    const parrot = await run(same);
    assert.equal(parrot.state, 'failed');
    assert.equal(parrot.error, 'Stopped a loop: the model asked for lookup with the same arguments 3 times.');

    const alternating = defineAgent({
      name: 'pendulum',
      instructions: '',
      model: scriptedModel(({ turn }) => ({ toolCalls: [{ name: 'lookup', args: { n: turn % 2 } }] })),
      tools: [lookup],
      maxSteps: 50,
      loopLimits: { sameCall: 100, turnsWithoutProgress: 4 },
    });
    const pendulum = await run(alternating);
    assert.equal(pendulum.error, 'Stopped a loop: 4 model calls in a row asked for nothing new.');
  });

  it('routes steps to the model the hook picks, and costs each at its own price', async () => {
    const script: Script = ({ turn }) => (turn < 2 ? { toolCalls: [{ name: 'lookup', args: { n: turn } }] } : 'Done.');
    const cheap = pricedModel(script, 'gpt-4o-mini');
    const dear = pricedModel(script, 'gpt-4o');
    const agent = defineAgent({ name: 'router', instructions: '', model: dear, tools: [lookup], route: ({ turn }) => (turn === 0 ? undefined : cheap) });
    const finished = await run(agent);
    const models = (await store.getSteps(finished.id)).filter((step) => step.kind === 'model');
    assert.deepEqual(models.map((step) => step.name), ['openai:gpt-4o', 'openai:gpt-4o-mini', 'openai:gpt-4o-mini']);
    const [first, second] = models;
    assert.ok((first?.costUsd ?? 0) > (second?.costUsd ?? 0) * 5, 'the dear model costs more for the same work');
    assert.ok(Math.abs(finished.costUsd - models.reduce((sum, step) => sum + (step.costUsd ?? 0), 0)) < 1e-12);
  });

  it('runs a sub-agent as its own run, linked to its parent and drawing on its budget', async () => {
    const child = defineAgent({ name: 'researcher', instructions: 'Research.', model: pricedModel(({ input }) => `Found: ${input}`) });
    const parent = defineAgent({
      name: 'lead',
      instructions: 'Delegate.',
      model: pricedModel(({ turn, toolResults }) => (turn === 0 ? { toolCalls: [{ name: 'researcher', args: { task: 'fares to Lisbon' } }] } : `Report: ${toolResults[0]?.content}`)),
      tools: [agentTool(child)],
    });
    const finished = await run(parent, { budget: { usd: 1 } });

    assert.equal(finished.result, 'Report: Found: fares to Lisbon');
    const [sub] = await store.childRuns(finished.id);
    assert.equal(sub?.agent, 'researcher');
    assert.equal(sub?.parentRunId, finished.id);
    assert.equal(sub?.parentSeq, 2);
    assert.equal(sub?.traceId, finished.traceId);
    const [budget] = await store.getBudgets([`run:${finished.id}`]);
    assert.ok(Math.abs((budget?.spent.usd ?? 0) - (finished.costUsd + (sub?.costUsd ?? 0))) < 1e-12, 'the parent budget paid for both');
  });

  it('forecasts a run per model from completed runs only, counting failed and budget-stopped ones apart', async () => {
    const lookups = (count: number): Script => ({ turn }) => (turn < count ? { toolCalls: [{ name: 'lookup', args: { n: turn } }] } : 'Done.');
    const agent = (model: Model, budget?: Agent['budget']) => defineAgent({ name: 'steady', instructions: '', model, tools: [lookup], maxSteps: 20, ...(budget ? { budget } : {}) });
    assert.equal(await forecast(store, 'steady'), undefined);
    // Four completed runs with the cheap model, of 1 to 4 lookups; one with the dear model.
    for (const count of [1, 2, 3, 4]) assert.equal((await run(agent(pricedModel(lookups(count))))).state, 'completed');
    assert.equal((await run(agent(pricedModel(lookups(1), 'gpt-4o')))).state, 'completed');
    // A run that fails and one that stops at its budget: neither says what a finished run costs.
    assert.equal((await run(agent(pricedModel(() => ({ toolCalls: [{ name: 'lookup', args: { n: 1 } }] }))))).state, 'failed');
    assert.equal((await run(agent(pricedModel(lookups(10))), { budget: { steps: 3 } })).state, 'budget_exceeded');

    const expected = await forecast(store, 'steady');
    assert.deepEqual(
      expected?.models.map((entry) => [entry.model, entry.basedOn]),
      [
        ['openai:gpt-4o-mini', 4],
        ['openai:gpt-4o', 1],
      ],
    );
    assert.deepEqual([expected?.failed, expected?.budgetExceeded, expected?.cancelled], [1, 1, 0]);
    const cheap = expected?.models[0];
    const runs = (await store.listRuns({ limit: 20, states: ['completed'] })).filter((record) => record.model === 'openai:gpt-4o-mini');
    const usd = runs.map((record) => record.costUsd).sort((a, b) => a - b);
    assert.equal(cheap?.usd.p50, usd[1], 'the median of four is the second (nearest rank)');
    assert.equal(cheap?.usd.p95, usd[3]);
    assert.deepEqual(cheap?.steps, { p50: 5, p95: 9 });

    // Compared with the budget a run would start with: only the model it runs with counts.
    const tight = await forecastAgentRun(store, agent(pricedModel(lookups(1))), { budget: { usd: usd[2] ?? 0, steps: 20 } });
    assert.deepEqual(tight.warnings, [
      `95% of earlier completed runs with openai:gpt-4o-mini spent up to ${formatUsd(usd[3] ?? 0)}, more than this run's money budget of ${formatUsd(usd[2] ?? 0)} (1 of 4 spent more): this run may stop before it is done.`,
    ]);
    assert.match(tight.sentence ?? '', /^Earlier completed runs with openai:gpt-4o-mini: typically \$0\.\d+ and [\d.]+k? tokens, 95% under \$0\.\d+ and [\d.]+k? tokens \(4 runs; not counted: 1 failed, 1 stopped at a budget\)\.$/);
    assert.deepEqual((await forecastAgentRun(store, agent(pricedModel(lookups(1))), { budget: { usd: 1 } })).warnings, []);
    // The agent's own budget counts, tightened by the run's; and steps are compared per run.
    assert.deepEqual((await forecastAgentRun(store, agent(pricedModel(lookups(1)), { steps: 6 }), {})).warnings, [
      "95% of earlier completed runs with openai:gpt-4o-mini spent up to 9 steps, more than this run's step budget of 6 steps (2 of 4 spent more): this run may stop before it is done.",
    ]);
    const other = await forecastAgentRun(store, agent(pricedModel(lookups(1))), { model: 'openai:gpt-4.1', budget: { usd: 0 } });
    assert.deepEqual(other.warnings, [], 'no earlier run with that model: nothing to compare');
    assert.match(other.sentence ?? '', /^No completed run with openai:gpt-4\.1 yet; with openai:gpt-4o-mini: typically/);
  });

  it('treats a budget stop as final, not as a failure worth retrying', () => {
    const error = new BudgetExceededError('over', 'run:x', 'usd');
    assert.equal(error.name, 'BudgetExceededError');
  });
});
