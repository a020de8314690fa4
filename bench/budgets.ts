/**
 * How close runs come to their budgets, and that they never pass them: runs through the real
 * `openai` SDK over HTTP against the local test server, which counts tokens as OpenAI does
 * (o200k_base) and keeps to the output limit each request sends.
 * 1. Single runs with a token or a money budget (gpt-4o-mini's price), a tool loop that never
 *    finishes on its own: how much of its budget each run spent before it stopped, the most it
 *    ever had spent, where `budget_warning` fired, and what the call it stopped before needed.
 * 2. 100 sub-agent runs started at once by one tool, all drawing on one shared pool.
 * 3. 10 processes, each running one agent, drawing on one pool in one SQLite file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { BudgetLimits, BudgetPool } from '../src/runtime/budget/budget';
import { defineAgent, defineTool, type Agent } from '../src/runtime/agent/define';
import type { RunEvent } from '../src/runtime/agent/events';
import { Runtime } from '../src/runtime/agent/runtime';
import { openaiModel } from '../src/runtime/model/openai';
import { scriptedModel } from '../src/runtime/model/scripted';
import type { ReservationRecord } from '../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../src/runtime/store/sqliteStore';
import { startOpenAIServer, type RecordedRequest, type ServerReply } from '../test/support/openaiServer';
import { completionTokens, firstTokens, maxTokensOf, openaiPromptTokens } from '../test/support/openaiTokens';
import { type Benchmark, formatNumber, table } from './harness';

const MODEL = 'gpt-4o-mini';
const SINGLE_BUDGETS: readonly BudgetLimits[] = [{ tokens: 20_000 }, { tokens: 50_000 }, { tokens: 200_000 }, { usd: 0.003 }, { usd: 0.01 }, { usd: 0.03 }];
const SUB_AGENTS = 100;
const PROCESSES = 10;

/** The endpoint's answer: a short thought and a lookup, or (for a worker with its facts) a final answer; cut at the limit sent. */
function answer(request: RecordedRequest): ServerReply {
  const results = request.body.messages.filter((message) => message.role === 'tool').length;
  const system = request.body.messages.find((message) => message.role === 'system');
  const facts = Number(/^Look (\d+) facts up/.exec(String(system?.content ?? ''))?.[1] ?? Number.POSITIVE_INFINITY);
  const reply =
    results >= facts
      ? { content: 'Both facts agree: the answer is in the second source, confirmed by the first one. '.repeat(3) }
      : { content: 'Checking the next source before answering. ', toolCalls: [{ name: 'lookup', arguments: JSON.stringify({ n: results + 1 }) }] };
  const wanted = completionTokens(reply);
  const limit = maxTokensOf(request.body) ?? Number.POSITIVE_INFINITY;
  const usage = { prompt_tokens: openaiPromptTokens(request.body), completion_tokens: Math.min(wanted, limit) };
  if (wanted <= limit) return { ...reply, usage };
  return { content: firstTokens(reply.content, limit), usage, finishReason: 'length' };
}

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a fact up in the next source.',
  args: z.object({ n: z.number().int() }),
  effect: 'none',
  run: ({ n }) => `Source ${n}: ${'The figures for the quarter were revised after the audit, and the totals now match the ledger. '.repeat(5)}`,
});

function researcher(baseURL: string): Agent {
  return defineAgent({
    name: 'researcher',
    instructions: 'Research the question thoroughly: look up every source you can before answering. '.repeat(6),
    model: openaiModel({ model: MODEL, baseURL, apiKey: 'bench' }),
    tools: [lookup],
    maxSteps: 100_000,
    loopLimits: { sameCall: 100_000, turnsWithoutProgress: 100_000 },
  });
}

function worker(baseURL: string): Agent {
  return defineAgent({
    name: 'worker',
    instructions: 'Look 2 facts up, then answer in one sentence.',
    model: openaiModel({ model: MODEL, baseURL, apiKey: 'bench' }),
    tools: [lookup],
    maxOutputTokens: 1000,
  });
}

function dispatcher(agent: Agent): Agent {
  const fanOut = defineTool({
    name: 'fan_out',
    description: 'Runs the workers in parallel.',
    args: z.object({ count: z.number().int() }),
    effect: 'idempotent',
    run: async ({ count }, ctx) => {
      const outcomes = await Promise.allSettled(Array.from({ length: count }, (_, index) => ctx.subAgent(agent, `Topic ${String(index).padStart(3, '0')}.`)));
      return `${outcomes.filter((outcome) => outcome.status === 'fulfilled').length} answered`;
    },
  });
  return defineAgent({
    name: 'dispatcher',
    instructions: 'Fan out.',
    model: scriptedModel([{ toolCalls: [{ name: 'fan_out', args: { count: SUB_AGENTS } }] }, 'All workers ran.']),
    tools: [fanOut],
  });
}

function steady(baseURL: string): Agent {
  return defineAgent({
    name: 'steady',
    instructions: 'Look 11 facts up, then answer.',
    model: openaiModel({ model: MODEL, baseURL, apiKey: 'bench' }),
    tools: [lookup],
    maxSteps: 100,
  });
}

/** What one run of an agent costs with no budget in its way. */
async function costOfOne(agent: Agent, dir: string): Promise<number> {
  const store = openSqliteStore(join(dir, `calibrate-${agent.name}.db`));
  const run = await (await new Runtime({ store }).start(agent, { input: 'Calibrate.' })).done;
  await store.close();
  if (run.state !== 'completed') throw new Error(`The ${agent.name} run to calibrate with ended ${run.state}: ${run.error ?? ''}`);
  return run.costUsd;
}

/** Spent plus held over time, replayed from the reservations table: its peak. */
function peakCommitted(reservations: readonly ReservationRecord[], value: (amounts: { inputTokens: number; outputTokens: number; usd: number }) => number): number {
  const events: { at: number; order: number; delta: number }[] = [];
  for (const reservation of reservations) {
    events.push({ at: reservation.createdAt, order: 1, delta: value(reservation.amounts) });
    if (reservation.closedAt !== null) events.push({ at: reservation.closedAt, order: 0, delta: value(reservation.actual ?? { inputTokens: 0, outputTokens: 0, usd: 0 }) - value(reservation.amounts) });
  }
  events.sort((a, b) => a.at - b.at || a.order - b.order);
  let committed = 0;
  let peak = 0;
  for (const event of events) {
    committed += event.delta;
    peak = Math.max(peak, committed);
  }
  return peak;
}

const percent = (value: number) => `${formatNumber(value * 100, 1)}%`;
/** Dollars are held and settled as floats: below this, a difference is rounding, not money. */
const EPSILON = 1e-9;
/** How far over its limit spent plus held ever went: `never`, or the overshoot. */
const overshoot = (peak: number, limit: number) => (peak <= limit * (1 + EPSILON) ? 'never' : `by ${percent(peak / limit - 1)}`);
const usdOf = (amounts: { inputTokens: number; outputTokens: number; usd: number }) => amounts.usd;

async function singleRuns(dir: string, baseURL: string, print: (line: string) => void, progress: (note: string) => void): Promise<void> {
  const rows: string[][] = [];
  for (const budget of SINGLE_BUDGETS) {
    const label = budget.usd !== undefined ? `$${budget.usd}` : `${(budget.tokens ?? 0).toLocaleString('en-US')} tokens`;
    progress(`a run with a budget of ${label}`);
    const store = openSqliteStore(join(dir, `single-${rows.length}.db`));
    const events: RunEvent[] = [];
    const run = await (await new Runtime({ store }).start(researcher(baseURL), { input: 'What changed in the quarter?', budget, onEvent: (event) => events.push(event) })).done;
    const money = budget.usd !== undefined;
    const limit = money ? (budget.usd ?? 0) : (budget.tokens ?? 0);
    const spentOf = (amounts: { inputTokens: number; outputTokens: number; usd: number }) => (money ? amounts.usd : amounts.inputTokens + amounts.outputTokens);
    const spent = spentOf({ ...run.usage, usd: run.costUsd });
    const reservations = await store.listReservations({ runId: run.id });
    const warning = events.find((event): event is Extract<RunEvent, { type: 'budget_warning' }> => event.type === 'budget_warning');
    // What was spent before the call whose settlement crossed the warning line: the warning fires on that call.
    const settledSpend = reservations.flatMap((reservation) => (reservation.actual ? [spentOf(reservation.actual)] : []));
    let before = 0;
    for (const amount of settledSpend) {
      if (warning && before + amount >= warning.spent - limit * EPSILON) break;
      before += amount;
    }
    // What the refused call needed, as its stop says (money is printed to 4 decimals).
    const needed = /could cost up to \$?([\d.,]+)|needs at least \$?([\d.,]+)/.exec(run.error ?? '');
    const need = Number((needed?.[1] ?? needed?.[2] ?? '').replace(/,/g, ''));
    rows.push([
      label,
      String(reservations.length),
      percent(spent / limit),
      overshoot(peakCommitted(reservations, spentOf), limit),
      warning ? `${percent(warning.spent / warning.limit)} (from ${percent(before / limit)})` : 'never',
      Number.isFinite(need) && need > 0 ? percent(need / limit) : run.state,
    ]);
    await store.close();
  }
  print('Single runs (a tool loop that never answers on its own; its conversation grows by one lookup a call):');
  for (const line of table(['budget', 'calls', 'spent', 'spent+held over the limit', 'budget_warning at (the call crossing 80%)', 'the refused call needed'], rows)) print(line);
}

async function subAgents(dir: string, baseURL: string, print: (line: string) => void, progress: (note: string) => void): Promise<void> {
  progress(`${SUB_AGENTS} sub-agents on one pool`);
  const store = openSqliteStore(join(dir, 'sub-agents.db'));
  // 60 workers' worth of spend: the rest must stop at the pool.
  const pool: BudgetPool = { id: 'team', limits: { usd: 60 * (await costOfOne(worker(baseURL), dir)) } };
  const parent = await (await new Runtime({ store, pools: [pool] }).start(dispatcher(worker(baseURL)), { input: 'Go.' })).done;
  const children = await store.childRuns(parent.id);
  const [budget] = await store.getBudgets(['pool:team']);
  const limit = pool.limits.usd ?? 0;
  const peak = peakCommitted(await store.listReservations(), usdOf);
  const states = (state: string) => children.filter((child) => child.state === state).length;
  print('');
  print(`${SUB_AGENTS} sub-agent runs at once on one pool of $${limit.toFixed(5)} (each needs 3 calls to answer):`);
  for (const line of table(
    ['pool used', 'spent+held over the limit', 'completed', 'stopped at the pool', 'other'],
    [[percent((budget?.spent.usd ?? 0) / limit), overshoot(peak, limit), String(states('completed')), String(states('budget_exceeded')), String(children.length - states('completed') - states('budget_exceeded'))]],
  )) {
    print(line);
  }
  await store.close();
}

async function processes(dir: string, baseURL: string, print: (line: string) => void, progress: (note: string) => void): Promise<void> {
  const db = join(dir, 'processes.db');
  // 5 runs' worth of spend.
  const limit = 5 * (await costOfOne(steady(baseURL), dir));
  const children = Array.from({ length: PROCESSES }, (_, index) =>
    spawn(process.execPath, [__filename, 'worker', db, baseURL, String(limit), String(index)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const lines = children.map((child) => createInterface({ input: child.stdout })[Symbol.asyncIterator]());
  const next = async (index: number): Promise<string> => {
    const line = await lines[index]?.next();
    if (!line || line.done) throw new Error(`bench worker ${index} exited early`);
    return line.value;
  };
  await Promise.all(children.map((_, index) => next(index)));
  progress(`${PROCESSES} processes on one pool; go`);
  for (const child of children) child.stdin.write('go\n');
  const results = await Promise.all(children.map(async (_, index) => JSON.parse(await next(index)) as { state: string; error: string | null }));
  for (const child of children) child.stdin.end();
  const store = openSqliteStore(db);
  const [budget] = await store.getBudgets(['pool:shared']);
  const peak = peakCommitted(await store.listReservations(), usdOf);
  await store.close();
  const count = (state: string) => results.filter((result) => result.state === state).length;
  print('');
  print(`${PROCESSES} processes, one run each (12 calls), on one pool of $${limit.toFixed(5)} in one SQLite file:`);
  for (const line of table(
    ['pool used', 'spent+held over the limit', 'runs completed', 'stopped at the pool', 'other'],
    [[percent((budget?.spent.usd ?? 0) / limit), overshoot(peak, limit), String(count('completed')), String(count('budget_exceeded')), String(results.length - count('completed') - count('budget_exceeded'))]],
  )) {
    print(line);
  }
}

export const benchmark: Benchmark = {
  name: 'budgets',
  title: 'How much of their budgets runs use, and that they never pass them',
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-budgets-'));
    const server = await startOpenAIServer({ respond: answer, models: [MODEL] });
    try {
      await singleRuns(dir, server.url, print, progress);
      await subAgents(dir, server.url, print, progress);
      await processes(dir, server.url, print, progress);
      print('');
      print('Goals: a run stops only when its next call cannot fit (spent + what the refused call needed > 100%), at >= 95% when calls are small against');
      print('the budget; never over the limit; 100 sub-agents on one pool use >= 90% of it; budget_warning fires on the call that crosses 80%.');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** A worker process: `node budgets.js worker <db> <baseURL> <poolUsd> <index>`; prints `ready`, waits for `go`, runs, prints how its run stopped. */
async function workerProcess(args: readonly string[]): Promise<void> {
  const [db, baseURL, limit, index] = args;
  if (!db || !baseURL || !limit) throw new Error('usage: budgets.js worker <db> <baseURL> <poolUsd> <index>');
  const store = openSqliteStore(db);
  const agent = steady(baseURL);
  const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write('ready\n');
  await input.next();
  const runtime = new Runtime({ store, pools: [{ id: 'shared', limits: { usd: Number(limit) } }] });
  const run = await (await runtime.start(agent, { input: `Process ${index ?? ''}.` })).done;
  await store.close();
  process.stdout.write(`${JSON.stringify({ state: run.state, error: run.error })}\n`);
}

if (require.main === module && process.argv[2] === 'worker') {
  workerProcess(process.argv.slice(3)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
