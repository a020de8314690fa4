import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool, type Agent, type Effect } from '../../src/runtime/agent/define';
import type { RunEvent } from '../../src/runtime/agent/events';
import { Runtime } from '../../src/runtime/agent/runtime';
import { CircuitBreakers } from '../../src/runtime/effects/circuitBreaker';
import { RetryableError } from '../../src/runtime/effects/retry';
import { ModelError } from '../../src/runtime/errors';
import type { Model, ModelRequest, ToolMessage } from '../../src/runtime/model/model';
import { scriptedModel, type ScriptedTurn } from '../../src/runtime/model/scripted';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { useTempDirs } from '../support/tempDir';

/** The owner of a process that no longer exists, as a crashed runtime process leaves behind. */
const DEAD_OWNER = `${hostname()}/999999/crashed`;

const SCRIPT: readonly ScriptedTurn[] = [
  { toolCalls: [{ name: 'step', args: { n: 1 } }] },
  { toolCalls: [{ name: 'step', args: { n: 2 } }] },
  'All done.',
];

interface Harness {
  readonly agent: Agent;
  /** The idempotency key of every call the tool received. */
  readonly keys: string[];
  /** Every request the model received. */
  readonly modelCalls: ModelRequest[];
  /** Resolves when the planned hang has begun: from then on, the first process is as good as dead. */
  readonly hung: Promise<void>;
}

/**
 * An agent whose first tool call (or second model call) hangs forever, the way a call is left
 * when its process is killed; later calls behave.
 */
function harness(effect: Effect, hangAt: 'first tool call' | 'second model call' | 'nowhere', instructions = 'Do the steps.'): Harness {
  const keys: string[] = [];
  const modelCalls: ModelRequest[] = [];
  let hang = hangAt !== 'nowhere';
  let began!: () => void;
  const hung = new Promise<void>((resolve) => (began = resolve));
  const hangHere = (): Promise<never> => {
    hang = false;
    began();
    return new Promise<never>(() => undefined);
  };
  const inner = scriptedModel(SCRIPT);
  const model: Model = {
    ...inner,
    generate(request, options) {
      modelCalls.push(request);
      if (hang && hangAt === 'second model call' && modelCalls.length === 2) return hangHere();
      return inner.generate(request, options);
    },
  };
  const step = defineTool({
    name: 'step',
    description: 'Does a step.',
    args: z.object({ n: z.number() }),
    output: z.string(),
    effect,
    run: ({ n }, ctx) => {
      keys.push(ctx.idempotencyKey);
      if (hang && hangAt === 'first tool call') return hangHere();
      return `step ${n} done`;
    },
  });
  return { agent: defineAgent({ name: 'stepper', instructions, model, tools: [step] }), keys, modelCalls, hung };
}

describe('durable runs: resuming from the journal', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;

  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-durable-'), 'keel.db'));
  });
  afterEach(() => store.close());

  /** Starts a run in a "process" that dies at the harness's hang; returns the run id. */
  async function crashed(h: Harness): Promise<string> {
    const handle = await new Runtime({ store, owner: DEAD_OWNER }).start(h.agent, { input: 'go' });
    await h.hung;
    return handle.runId;
  }

  async function resume(agent: Agent, runId: string) {
    const handle = await new Runtime({ store }).resume(agent, runId);
    return handle.done;
  }

  it('re-executes an idempotent tool that was in flight with the same key, and calls nothing before it again', async () => {
    const h = harness('idempotent', 'first tool call');
    const runId = await crashed(h);
    const before = await store.getRun(runId);
    assert.equal(h.modelCalls.length, 1);

    const finished = await resume(h.agent, runId);

    assert.equal(finished.state, 'completed');
    assert.equal(finished.result, 'All done.');
    assert.equal(finished.id, runId);
    assert.equal(finished.traceId, before?.traceId, 'the resumed run continues the same trace');
    assert.equal(h.modelCalls.length, 3, 'the first model call came from the journal');
    assert.deepEqual(h.keys, [`${runId}:1:0`, `${runId}:1:0`, `${runId}:3:0`]);
    const [, first] = await store.getSteps(runId);
    assert.equal(first?.attempts, 2);
    assert.equal(first?.failedAttempts[0]?.reason, 'interrupted');
    const effects = await store.getEffects(runId);
    assert.deepEqual(
      effects.map((effect) => [effect.key, effect.status, effect.attempts]),
      [
        [`${runId}:1:0`, 'completed', 2],
        [`${runId}:3:0`, 'completed', 1],
      ],
    );
  });

  it('calls the model again when it was interrupted in a model call, and no tool', async () => {
    const h = harness('none', 'second model call');
    const runId = await crashed(h);
    assert.equal(h.keys.length, 1);

    const finished = await resume(h.agent, runId);

    assert.equal(finished.state, 'completed');
    assert.equal(h.keys.length, 2, 'the first tool call came from the journal');
    assert.equal(h.modelCalls.length, 4, 'two model calls in the first process (one lost), two after');
    assert.deepEqual(h.modelCalls[1]?.messages, h.modelCalls[2]?.messages, 'the repeated call sees the same conversation');
  });

  describe('an unsafe tool in flight', () => {
    it('pauses for a person instead of repeating it, and retries with the same key when told to', async () => {
      const h = harness('unsafe', 'first tool call');
      const runId = await crashed(h);

      const paused = await resume(h.agent, runId);
      assert.equal(paused.state, 'waiting_approval');
      assert.match(paused.error ?? '', /step was running when its process stopped, and it is unsafe to repeat/);
      assert.equal(h.keys.length, 1, 'the unsafe call was not repeated');
      const [approval] = await store.listApprovals({ status: 'pending' });
      assert.equal(approval?.kind, 'unknown_outcome');
      assert.equal(approval?.tool, 'step');
      assert.deepEqual(approval?.args, { n: 1 });
      await assert.rejects(new Runtime({ store }).resume(h.agent, runId), /is waiting for a decision on approval/);

      await store.decideApproval(approval!.id, { action: 'retry' }, { by: 'ada', via: 'cli', at: 5 });
      const finished = await resume(h.agent, runId);

      assert.equal(finished.state, 'completed');
      assert.deepEqual(h.keys, [`${runId}:1:0`, `${runId}:1:0`, `${runId}:3:0`]);
      await assert.rejects(store.decideApproval(approval!.id, { action: 'fail', reason: 'late' }, { by: 'bob', via: 'cli', at: 6 }), /was already decided by ada/);
    });

    it('takes the result a person gives instead of calling the tool again', async () => {
      const h = harness('unsafe', 'first tool call');
      const runId = await crashed(h);
      await resume(h.agent, runId);
      const [approval] = await store.listApprovals({ status: 'pending' });
      await store.decideApproval(approval!.id, { action: 'done', result: 'step 1 confirmed by phone' }, { by: 'ada', via: 'cli', at: 5 });

      const finished = await resume(h.agent, runId);

      assert.equal(finished.state, 'completed');
      assert.equal(h.keys.length, 2, 'only the second step ran after the crash');
      const told = h.modelCalls[1]?.messages.at(-1) as ToolMessage;
      assert.equal(told.content, 'step 1 confirmed by phone');
      const [effect] = await store.getEffects(runId);
      assert.equal(effect?.status, 'completed');
    });

    it('tells the model the call failed when a person fails it', async () => {
      const h = harness('unsafe', 'first tool call');
      const runId = await crashed(h);
      await resume(h.agent, runId);
      const [approval] = await store.listApprovals({ status: 'pending' });
      await store.decideApproval(approval!.id, { action: 'fail', reason: 'the card was declined' }, { by: 'ada', via: 'cli', at: 5 });

      const finished = await resume(h.agent, runId);

      assert.equal(finished.state, 'completed');
      const told = h.modelCalls[1]?.messages.at(-1) as ToolMessage;
      assert.equal(told.isError, true);
      assert.equal(told.content, 'Error: step was marked as failed by ada: the card was declined');
    });
  });

  it('refuses to continue a run whose agent changed, naming the step, and executes nothing', async () => {
    const h = harness('idempotent', 'first tool call');
    const runId = await crashed(h);
    const stepsBefore = await store.getSteps(runId);
    const edited = harness('idempotent', 'nowhere', 'Do the steps, but faster.');

    const stopped = await resume(edited.agent, runId);

    assert.equal(stopped.state, 'interrupted');
    assert.match(stopped.error ?? '', /^Run run_\w+ no longer matches its agent at step 1: the conversation the agent now sends the model differs/);
    assert.equal(edited.modelCalls.length + edited.keys.length, 0);
    assert.deepEqual(await store.getSteps(runId), stepsBefore);

    const finished = await resume(h.agent, runId);
    assert.equal(finished.state, 'completed', 'the original agent can still resume it');
  });

  it('refuses to resume a run that ended, or that a live process is running', async () => {
    const h = harness('none', 'nowhere');
    const done = await (await new Runtime({ store }).start(h.agent, { input: 'go' })).done;
    await assert.rejects(new Runtime({ store }).resume(h.agent, done.id), /has completed; only interrupted or paused runs can be resumed/);

    const stuck = harness('none', 'first tool call');
    const live = await new Runtime({ store }).start(stuck.agent, { input: 'go' });
    await stuck.hung;
    await assert.rejects(new Runtime({ store }).resume(stuck.agent, live.runId), /is still running \(in process/);
  });

  it('records every failed model attempt and backs off before the next', async () => {
    const slept: number[] = [];
    const inner = scriptedModel(['Fine.']);
    let calls = 0;
    const flaky: Model = {
      ...inner,
      generate(request, options) {
        calls++;
        if (calls === 1) return Promise.reject(new ModelError('HTTP 429', { context: { status: 429, retryAfterMs: 1500 } }));
        if (calls === 2) return Promise.reject(new ModelError('HTTP 503', { context: { status: 503 } }));
        return inner.generate(request, options);
      },
    };
    const agent = defineAgent({ name: 'patient', instructions: '', model: flaky, modelRetry: { baseMs: 100, capMs: 1000 } });
    const retries: RunEvent[] = [];
    const runtime = new Runtime({ store, random: () => 0.5, sleep: (ms) => (slept.push(ms), Promise.resolve()) });
    const finished = await (await runtime.start(agent, { input: 'hi', onEvent: (e) => e.type === 'step_retry' && retries.push(e) })).done;

    assert.equal(finished.state, 'completed');
    assert.deepEqual(slept, [1500, 100]);
    assert.equal(retries.length, 2);
    const [step] = await store.getSteps(finished.id);
    assert.equal(step?.attempts, 3);
    assert.deepEqual(
      step?.failedAttempts.map((failure) => [failure.attempt, failure.reason, failure.delayMs]),
      [
        [1, 'HTTP 429', 1500],
        [2, 'HTTP 503', 100],
      ],
    );
  });

  it('fails a run at once when the model says no, without retrying', async () => {
    let calls = 0;
    const refusing: Model = {
      provider: 'test',
      name: 'strict',
      generate: () => (calls++, Promise.reject(new ModelError('HTTP 400: bad request', { context: { status: 400 } }))),
    };
    const finished = await (await new Runtime({ store }).start(defineAgent({ name: 'a', instructions: '', model: refusing }), { input: 'x' })).done;
    assert.equal(calls, 1);
    assert.equal(finished.state, 'failed');
    assert.equal(finished.error, 'The model test:strict failed (HTTP 400, not retried): HTTP 400: bad request');
  });

  it('retries a tool that reports a transient failure, always under the same idempotency key', async () => {
    const keys: string[] = [];
    const booking = defineTool({
      name: 'book',
      description: 'Book.',
      args: z.object({}),
      effect: 'unsafe',
      retry: { attempts: 3, baseMs: 1, capMs: 1 },
      run: (_args, ctx) => {
        keys.push(ctx.idempotencyKey);
        if (keys.length < 3) throw new RetryableError('gateway timeout');
        return 'booked';
      },
    });
    const model = scriptedModel([{ toolCalls: [{ name: 'book' }] }, 'Booked.']);
    const finished = await (await new Runtime({ store }).start(defineAgent({ name: 'b', instructions: '', model, tools: [booking] }), { input: 'x' })).done;

    assert.equal(finished.state, 'completed');
    assert.deepEqual(keys, Array(3).fill(`${finished.id}:1:0`));
    const [effect] = await store.getEffects(finished.id);
    assert.equal(effect?.attempts, 3);
  });

  it('stops a run with a clear error when a tool\'s circuit is open', async () => {
    let now = 0;
    const breakers = new CircuitBreakers({ windowMs: 60_000, minimumCalls: 2, failureRate: 0.5, cooldownMs: 30_000 }, () => now);
    const down = defineTool({
      name: 'inventory',
      description: 'Inventory.',
      args: z.object({}),
      effect: 'none',
      retry: { attempts: 1 },
      run: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    });
    const model = scriptedModel([{ toolCalls: [{ name: 'inventory' }] }, { toolCalls: [{ name: 'inventory' }] }, { toolCalls: [{ name: 'inventory' }] }, 'Gave up.']);
    const agent = defineAgent({ name: 'c', instructions: '', model, tools: [down], loopLimits: { sameCall: 10 } });
    const runtime = new Runtime({ store, breakers, now: () => now });

    const finished = await (await runtime.start(agent, { input: 'x' })).done;

    assert.equal(finished.state, 'failed');
    assert.match(finished.error ?? '', /^The circuit for tool inventory is open after 2 of 2 calls failed within 60 s/);
    now = 30_000;
    assert.doesNotThrow(() => breakers.for('tool inventory').admit(), 'after the cooldown a probe may go through');
  });
});
