import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import type { BudgetLimits, BudgetPool } from '../../src/runtime/budget/budget';
import { DEFAULT_PRICES, costOf, priceOf } from '../../src/runtime/budget/prices';
import { MIN_OUTPUT_TOKENS } from '../../src/runtime/budget/runBudget';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import type { RunEvent } from '../../src/runtime/agent/events';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { Model, ModelRequest } from '../../src/runtime/model/model';
import { openaiModel } from '../../src/runtime/model/openai';
import type { Script } from '../../src/runtime/model/scripted';
import { maxInputTokens, openaiInputTokens } from '../../src/runtime/model/tokens';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { startOpenAIServer, type OpenAIServer, type RecordedRequest } from '../support/openaiServer';
import { completionTokens, firstTokens, maxTokensOf, openaiPromptTokens } from '../support/openaiTokens';
import { pricedModel } from '../support/pricedModel';
import { seededRandom } from '../support/seededRandom';
import { useTempDirs } from '../support/tempDir';

const PRICE = priceOf('openai', 'gpt-4o-mini', [DEFAULT_PRICES]) ?? { inputPerMTok: 0, outputPerMTok: 0 };

/** Text of a kind that tokenizes its own way: prose, code, JSON, CJK, emoji, digits, text that looks like special tokens. */
function text(random: () => number, chars: number): string {
  const kinds = [
    () => 'The quick brown fox jumps over the lazy dog while the committee reviews the budget. ',
    () => 'function add(a, b) {\n  return a + b; // sum\n}\n',
    () => JSON.stringify({ id: Math.floor(random() * 1e6), tags: ['a', 'b'], ok: random() < 0.5 }),
    () => '東京の天気は晴れです。予算を確認してください。',
    () => '🚀✨ 🎉 👩‍💻 ',
    () => String(Math.floor(random() * 1e12)),
    () => '<|endoftext|> <|im_start|>user\n',
    () => '\t\n  \n',
  ];
  let out = '';
  while (out.length < chars) out += kinds[Math.floor(random() * kinds.length)]?.() ?? '';
  return out.slice(0, chars);
}

describe('input tokens counted before a model call (src/runtime/model/tokens)', function () {
  this.timeout(60_000);
  let server: OpenAIServer;
  before(async () => {
    server = await startOpenAIServer({ respond: () => ({ content: 'ok' }) });
  });
  after(() => server.close());

  /** A conversation of a generated shape: instructions, user turns, tool calls and results, tools offered. */
  function conversation(seed: number): ModelRequest {
    const random = seededRandom(seed);
    const messages: ModelRequest['messages'][number][] = [{ role: 'system', content: text(random, 50 + Math.floor(random() * 1500)) }];
    messages.push({ role: 'user', content: text(random, 5 + Math.floor(random() * 800)) });
    const turns = Math.floor(random() * 6);
    for (let turn = 0; turn < turns; turn++) {
      const id = `call_${seed}_${turn}`;
      messages.push({ role: 'assistant', content: random() < 0.3 ? text(random, 100) : null, toolCalls: [{ id, name: 'lookup', arguments: JSON.stringify({ q: text(random, 40) }) }] });
      messages.push({ role: 'tool', toolCallId: id, name: 'lookup', content: text(random, Math.floor(random() * 3000)), isError: random() < 0.1 });
    }
    const tools = random() < 0.2 ? [] : [{ name: 'lookup', description: text(random, 80), parameters: { type: 'object', properties: { q: { type: 'string', description: 'What to look up.' } }, required: ['q'] } }];
    return { messages, tools };
  }

  /** What the endpoint counts for a request, as OpenAI would: the real SDK sends it over HTTP and the server counts what arrived. */
  async function countedByEndpoint(request: ModelRequest): Promise<number> {
    await openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test', stream: false }).generate(request);
    const sent = server.requests.at(-1) as RecordedRequest;
    return openaiPromptTokens(sent.body);
  }

  // Seeds 0-19 were looked at while Keel's count was written; seeds 1000-1019 were not.
  for (const [name, seeds] of [
    ['seen', Array.from({ length: 20 }, (_, index) => index)],
    ['held out', Array.from({ length: 20 }, (_, index) => 1000 + index)],
  ] as const) {
    it(`counts OpenAI requests at or above what the endpoint counts, within a tenth of it (${name} shapes)`, async () => {
      const ratios: number[] = [];
      for (const seed of seeds) {
        const request = conversation(seed);
        const keel = await openaiInputTokens('gpt-4o-mini', request);
        const endpoint = await countedByEndpoint(request);
        assert.ok(keel >= endpoint, `seed ${seed}: Keel counted ${keel}, the endpoint ${endpoint}`);
        assert.ok(keel <= endpoint * 1.1 + 20, `seed ${seed}: Keel counted ${keel}, the endpoint only ${endpoint}`);
        assert.ok(keel < maxInputTokens(request), `seed ${seed}: no better than the byte bound`);
        ratios.push(keel / endpoint);
      }
      console.log(`      Keel's count / the endpoint's: ${Math.min(...ratios).toFixed(3)} to ${Math.max(...ratios).toFixed(3)} over ${seeds.length} conversations`);
    });
  }

  it('counts models of other families served over the same API at 1.3 times, and never above the byte bound', async () => {
    const request = conversation(7);
    const openai = await openaiInputTokens('gpt-4o', request);
    assert.equal(await openaiInputTokens('llama3.1:8b', request), Math.min(Math.ceil(openai * 1.3), maxInputTokens(request)));
    const bytes = { messages: [{ role: 'user' as const, content: 'é'.repeat(50) }], tools: [] };
    assert.ok((await openaiInputTokens('mistral', bytes)) <= maxInputTokens(bytes));
  });
});

describe('budgets that reach their limit and never pass it', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();
  let store: SqliteStore;
  beforeEach(() => (store = openSqliteStore(join(tempDir('keel-budget-limits-'), 'keel.db'))));
  afterEach(() => store.close());

  const lookupTool = (resultChars: number) =>
    defineTool({ name: 'lookup', description: 'Looks up.', args: z.object({ n: z.number() }), effect: 'none', run: ({ n }) => `fact ${n}: ${'detail '.repeat(resultChars / 7)}` });

  /**
   * A model that never stops looking things up, writing `answerChars` of text with each call; the
   * input tokens it is asked to count are kept, so a test knows what the call the budget refused needed.
   */
  function lookingModel(answerChars: number): { model: Model; counted: number[]; sent: number[] } {
    const counted: number[] = [];
    const sent: number[] = [];
    const script: Script = ({ turn }) => ({ text: 'Looking further. '.repeat(answerChars / 17), toolCalls: [{ name: 'lookup', args: { n: turn } }] });
    const inner = pricedModel(script);
    const model: Model = {
      ...inner,
      countInputTokens: async (request) => {
        const tokens = await inner.countInputTokens?.(request);
        counted.push(tokens ?? 0);
        return tokens ?? 0;
      },
      generate: (request, options) => {
        sent.push(request.maxTokens ?? -1);
        return inner.generate(request, options);
      },
    };
    return { model, counted, sent };
  }

  async function runUntilStopped(agent: Agent, budget: BudgetLimits, events: RunEvent[], runtime = new Runtime({ store })): Promise<RunRecord> {
    return (await runtime.start(agent, { input: 'go', budget, onEvent: (event) => events.push(event) })).done;
  }

  /** Generated run shapes: a token or money budget, answer and result sizes, an output limit, a warning line. */
  function shape(seed: number) {
    const random = seededRandom(seed);
    const money = random() < 0.5;
    const size = 3000 + Math.floor(random() * 80_000);
    const maxOutputTokens = [64, 200, 512, 1024, 4096][Math.floor(random() * 5)] ?? 4096;
    return {
      money,
      budget: (money ? { usd: costOf(PRICE, size * 0.8, size * 0.2) } : { tokens: size }) satisfies BudgetLimits,
      warnAt: 0.5 + Math.floor(random() * 45) / 100,
      maxOutputTokens,
      // Within the agent's own output limit: an answer that limit cuts would end the run as answered.
      answerChars: 20 + Math.floor(random() * Math.min(2400, (maxOutputTokens - 40) * 4)),
      resultChars: 20 + Math.floor(random() * 3000),
    };
  }

  // Seeds 1-20 were looked at while the reservations were written; seeds 501-520 were not.
  for (const [name, seeds] of [
    ['seen', Array.from({ length: 20 }, (_, index) => 1 + index)],
    ['held out', Array.from({ length: 20 }, (_, index) => 501 + index)],
  ] as const) {
    it(`stops each generated run only when its next call cannot fit, never past its limit, warning at its fraction (${name} shapes)`, async () => {
      const reached: number[] = [];
      for (const seed of seeds) {
        const spec = shape(seed);
        const { model, counted, sent } = lookingModel(spec.answerChars);
        const agent = defineAgent({ name: 'looker', instructions: 'Look everything up.', model, tools: [lookupTool(spec.resultChars)], maxSteps: 10_000, maxOutputTokens: spec.maxOutputTokens, loopLimits: { turnsWithoutProgress: 10_000 } });
        const events: RunEvent[] = [];
        const stopped = await runUntilStopped(agent, { ...spec.budget, warnAt: spec.warnAt }, events);
        const where = `seed ${seed} (${JSON.stringify(spec)}): ${stopped.state} ${stopped.error ?? ''}`;
        assert.equal(stopped.state, 'budget_exceeded', where);

        const [budget] = await store.getBudgets([`run:${stopped.id}`]);
        assert.ok(budget, where);
        const dimension = spec.money ? 'usd' : 'tokens';
        const limit = spec.money ? (spec.budget as { usd: number }).usd : (spec.budget as { tokens: number }).tokens;
        const spent = spec.money ? budget.spent.usd : budget.spent.inputTokens + budget.spent.outputTokens;
        assert.ok(spent <= limit + 1e-12, `${where}: spent ${spent} of ${limit}`);
        assert.deepEqual([budget.reserved.inputTokens, budget.reserved.outputTokens], [0, 0], where);
        for (const reservation of await store.listReservations({ runId: stopped.id })) {
          assert.ok((reservation.actual?.inputTokens ?? 0) <= reservation.amounts.inputTokens, `${where}: a call used more input than it held`);
          assert.ok((reservation.actual?.outputTokens ?? 0) <= reservation.amounts.outputTokens, `${where}: a call used more output than it held`);
        }
        assert.ok(sent.every((maxTokens) => maxTokens <= spec.maxOutputTokens && maxTokens >= Math.min(spec.maxOutputTokens, MIN_OUTPUT_TOKENS)), `${where}: sent ${sent.join(',')}`);

        if (/needs at least/.test(stopped.error ?? '')) {
          // The call it stopped before could not have fitted: its input and the fewest output tokens a call is sent with.
          const input = counted.at(-1) ?? 0;
          const least = Math.min(spec.maxOutputTokens, MIN_OUTPUT_TOKENS);
          const need = spec.money ? costOf(PRICE, input, least) : input + least;
          assert.ok(spent + need > limit - 1e-12, `${where}: stopped with ${limit - spent} left, the call needed ${need}`);
        } else {
          assert.match(stopped.error ?? '', /^Stopped: The model's answer was cut off at [\d,]+ output tokens, all that the run's budget had room for\.$/, where);
        }

        const warnings = events.filter((event): event is Extract<RunEvent, { type: 'budget_warning' }> => event.type === 'budget_warning' && event.dimension === dimension);
        if (spent >= spec.warnAt * limit) {
          assert.equal(warnings.length, 1, `${where}: one warning at ${spec.warnAt}`);
          assert.ok((warnings[0]?.spent ?? 0) >= spec.warnAt * limit, where);
        } else {
          assert.equal(warnings.length, 0, where);
        }
        reached.push(spent / limit);
      }
      reached.sort((a, b) => a - b);
      console.log(`      ${seeds.length} runs reached ${(100 * (reached[0] ?? 0)).toFixed(1)}% to ${(100 * (reached.at(-1) ?? 0)).toFixed(1)}% of their budgets (median ${(100 * (reached[Math.floor(reached.length / 2)] ?? 0)).toFixed(1)}%)`);
    });
  }

  it('sends the last calls the output limit the budget leaves room for, and stops a run whose answer that limit cut off', async () => {
    // The model writes about 300 tokens each time; with room for less, its answer is cut.
    const { model, sent } = lookingModel(1200);
    const agent = defineAgent({ name: 'writer', instructions: '', model, tools: [lookupTool(100)], maxSteps: 1000, maxOutputTokens: 4096 });
    const stopped = await runUntilStopped(agent, { tokens: 6000 }, []);
    assert.equal(stopped.state, 'budget_exceeded');
    assert.ok(sent.slice(0, -1).every((maxTokens) => maxTokens === 4096 || maxTokens >= 300), `sent ${sent.join(',')}`);
    const last = sent.at(-1) ?? 0;
    if (last < 300) {
      assert.equal(stopped.error, `Stopped: The model's answer was cut off at ${last.toLocaleString('en-US')} output tokens, all that the run's budget had room for.`);
      const steps = await store.getSteps(stopped.id);
      const cut = steps.at(-1);
      assert.deepEqual([cut?.kind, cut?.status], ['model', 'failed'], 'the cut answer is journaled as failed, its spend counted');
      assert.ok(stopped.usage.outputTokens >= last);
    }
    assert.ok(sent.some((maxTokens) => maxTokens < 4096), 'the budget clamped a call');
  });

  it('waits for a call in flight to settle when the shared budget is full, then goes on', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = pricedModel(() => 'Done.');
    const gated: Model = {
      ...slow,
      generate: async (request, options) => {
        await gate;
        return slow.generate(request, options);
      },
    };
    // The pool holds one call of the slow agent (4096 output tokens reserved) and not two.
    const pool: BudgetPool = { id: 'team', limits: { tokens: 4096 + 100 } };
    const runtime = new Runtime({ store, pools: [pool], budgetWaitMs: 10_000 });
    const first = await runtime.start(defineAgent({ name: 'slow', instructions: '', model: gated }), { input: 'go' });
    const [held] = await waitFor(() => store.listReservations({ status: 'held' }));
    assert.ok(held);
    const second = await runtime.start(defineAgent({ name: 'quick', instructions: '', model: pricedModel(() => 'Done.') }), { input: 'go' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await store.getRun(second.runId))?.state, 'running', 'the second run waits for room');
    release();
    const [a, b] = await Promise.all([first.done, second.done]);
    assert.deepEqual([a.state, b.state], ['completed', 'completed']);
    const [settled] = await store.listReservations({ runId: first.runId });
    const [after] = await store.listReservations({ runId: second.runId });
    assert.ok(settled?.closedAt !== null && after && after.createdAt >= (settled?.closedAt ?? 0), 'the second call reserved once the first settled');
  });

  it('stops a call at once when nothing held could make room, and after its wait when what is held does not settle in time', async () => {
    const pool: BudgetPool = { id: 'small', limits: { tokens: 4096 + 100 } };
    const runtime = new Runtime({ store, pools: [pool], budgetWaitMs: 400 });
    const hanging: Model = {
      ...pricedModel(() => 'Done.'),
      generate: (_request, options) => new Promise((_resolve, reject) => options?.signal?.addEventListener('abort', () => reject(options.signal?.reason as Error))),
    };
    const stuck = await runtime.start(defineAgent({ name: 'stuck', instructions: '', model: hanging }), { input: 'go' });
    await waitFor(() => store.listReservations({ status: 'held' }));

    let started = Date.now();
    const waited = await (await runtime.start(defineAgent({ name: 'quick', instructions: '', model: pricedModel(() => 'Done.') }), { input: 'go' })).done;
    assert.equal(waited.state, 'budget_exceeded');
    assert.ok(Date.now() - started >= 400, 'it waited');
    assert.match(waited.error ?? '', /held by calls in flight\)\. It waited \d+ ms for calls in flight to settle\.$/);

    // A call that needs more than the pool's whole limit would not fit even if everything held were freed.
    started = Date.now();
    const big = defineAgent({ name: 'big', instructions: 'x'.repeat(40_000), model: pricedModel(() => 'Done.') });
    const hopeless = await (await runtime.start(big, { input: 'go' })).done;
    assert.equal(hopeless.state, 'budget_exceeded');
    assert.ok(Date.now() - started < 400, 'it did not wait');
    assert.doesNotMatch(hopeless.error ?? '', /It waited/);
    stuck.cancel();
    await stuck.done;
  });

  describe('over HTTP with the real openai SDK, against an endpoint that counts as OpenAI does', () => {
    let server: OpenAIServer;
    /** Whether the endpoint keeps to the output limit it is sent, as OpenAI does; and how long its reports are. */
    let obeyLimit = true;
    let reportSentences = 40;
    before(async () => {
      server = await startOpenAIServer({
        respond: (request) => {
          const answer = { content: 'Here is a long report. '.repeat(reportSentences), toolCalls: [{ name: 'lookup', arguments: JSON.stringify({ n: request.body.messages.length }) }] };
          const wanted = completionTokens(answer);
          const limit = maxTokensOf(request.body) ?? Number.POSITIVE_INFINITY;
          const usage = { prompt_tokens: openaiPromptTokens(request.body), completion_tokens: obeyLimit ? Math.min(wanted, limit) : wanted };
          if (!obeyLimit || wanted <= limit) return { ...answer, usage };
          return { content: firstTokens(answer.content, limit), usage, finishReason: 'length' };
        },
      });
    });
    after(() => server.close());

    it('records a provider that answers past the output limit it was sent, reports it, and stops the run at its budget', async () => {
      obeyLimit = false;
      reportSentences = 1200;
      try {
        const model = openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test' });
        const agent = defineAgent({ name: 'overrun', instructions: 'Report.', model, tools: [lookupTool(50)], maxSteps: 100, maxOutputTokens: 1000 });
        const events: RunEvent[] = [];
        const stopped = await runUntilStopped(agent, { tokens: 5000 }, events);
        assert.equal(stopped.state, 'budget_exceeded');
        assert.equal(maxTokensOf(server.requests.at(-1)?.body ?? ({} as RecordedRequest['body'])), 1000, 'the limit was sent');
        const overruns = events.filter((event): event is Extract<RunEvent, { type: 'provider_overrun' }> => event.type === 'provider_overrun');
        assert.equal(overruns.length, 1);
        const [overrun] = overruns;
        assert.equal(overrun?.reserved.outputTokens, 1000);
        assert.ok((overrun?.reported.outputTokens ?? 0) > 4000);
        assert.deepEqual(overrun?.overLimit, [`run:${stopped.id}`]);
        const [reservation] = await store.listReservations({ runId: stopped.id });
        assert.ok((reservation?.actual?.outputTokens ?? 0) > (reservation?.amounts.outputTokens ?? 0), 'the reservation records what was reported against what was held');
        const [budget] = await store.getBudgets([`run:${stopped.id}`]);
        assert.equal((budget?.spent.inputTokens ?? 0) + (budget?.spent.outputTokens ?? 0), stopped.usage.inputTokens + stopped.usage.outputTokens, 'what was reported is spent');
        assert.match(stopped.error ?? '', /which would take the run's token budget of 5,000 tokens over \(spent [\d,]+ tokens\)\.$/);
      } finally {
        obeyLimit = true;
        reportSentences = 40;
      }
    });

    it('sends max_tokens instead when the model is set up for an endpoint that knows only that field', async () => {
      const model = openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test', maxTokensField: 'max_tokens' });
      await model.generate({ messages: [{ role: 'user', content: 'hi' }], tools: [], maxTokens: 77 });
      const body = server.requests.at(-1)?.body;
      assert.deepEqual([body?.max_tokens, body?.max_completion_tokens], [77, undefined]);
      await openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test' }).generate({ messages: [{ role: 'user', content: 'hi' }], tools: [], maxTokens: 78 });
      const plain = server.requests.at(-1)?.body;
      assert.deepEqual([plain?.max_tokens, plain?.max_completion_tokens], [undefined, 78]);
    });

    it('brings a run with a token budget close to its limit through the SDK, never over it', async () => {
      const earlier = server.requests.length;
      const model = openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test' });
      const agent = defineAgent({ name: 'reporter', instructions: 'Report.', model, tools: [lookupTool(400)], maxSteps: 1000, maxOutputTokens: 4096, loopLimits: { turnsWithoutProgress: 1000 } });
      const stopped = await runUntilStopped(agent, { tokens: 60_000 }, []);
      assert.equal(stopped.state, 'budget_exceeded');
      const spent = stopped.usage.inputTokens + stopped.usage.outputTokens;
      assert.ok(spent <= 60_000, `spent ${spent}`);
      // It stopped because the next call could not fit, not before.
      const need = Number(/needs at least ([\d,]+) tokens/.exec(stopped.error ?? '')?.[1]?.replace(/,/g, '') ?? Number.NaN);
      assert.ok(spent + need > 60_000, `spent ${spent}, the next call needed ${need}`);
      assert.ok(server.requests.slice(earlier).every((request) => (maxTokensOf(request.body) ?? 0) >= MIN_OUTPUT_TOKENS), 'no call was sent with less room than the least');
    });
  });
});

async function waitFor<T>(read: () => Promise<readonly T[]>): Promise<readonly T[]> {
  for (let tries = 0; tries < 200; tries++) {
    const found = await read();
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('nothing came');
}
