import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineAgent, defineTool, type Agent, type Tool } from '../../src/runtime/agent/define';
import type { RunEvent } from '../../src/runtime/agent/events';
import { Runtime } from '../../src/runtime/agent/runtime';
import { ModelSpecError } from '../../src/runtime/errors';
import type { Model, ModelRequest, ToolMessage } from '../../src/runtime/model/model';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { z } from 'zod';

describe('Runtime: the agent loop', () => {
  let dir: string;
  let store: SqliteStore;
  let runtime: Runtime;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-runtime-'));
    store = openSqliteStore(join(dir, 'keel.db'));
    runtime = new Runtime({ store });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A model that plays `script` and remembers every request it was sent. */
  function recording(script: Script): { model: Model; requests: ModelRequest[] } {
    const inner = scriptedModel(script);
    const requests: ModelRequest[] = [];
    return {
      requests,
      model: { ...inner, generate: (request, options) => (requests.push(request), inner.generate(request, options)) },
    };
  }

  const charges: string[] = [];
  const charge = defineTool({
    name: 'charge',
    description: 'Charge a card.',
    args: z.object({ amount: z.number().positive(), currency: z.enum(['USD', 'EUR']) }),
    output: z.object({ receipt: z.string() }),
    effect: 'unsafe',
    run: ({ amount, currency }, ctx) => {
      charges.push(ctx.idempotencyKey);
      return { receipt: `${amount} ${currency}` };
    },
  });

  function agent(model: Model, tools: Tool[] = [charge], maxSteps = 6): Agent {
    return defineAgent({ name: 'payer', instructions: 'Pay.', model, tools, maxSteps });
  }

  async function run(target: Agent, input = 'pay 5 USD', onEvent?: (event: RunEvent) => void) {
    const handle = await runtime.start(target, { input, ...(onEvent ? { onEvent } : {}) });
    return handle.done;
  }

  beforeEach(() => charges.splice(0));

  it('runs model and tool steps to a final answer and journals each one in order', async () => {
    const { model } = recording([{ toolCalls: [{ name: 'charge', args: { amount: 5, currency: 'USD' } }] }, 'Paid 5 USD.']);
    const finished = await run(agent(model));

    assert.equal(finished.state, 'completed');
    assert.equal(finished.result, 'Paid 5 USD.');
    assert.equal(finished.stepCount, 3);
    const steps = await store.getSteps(finished.id);
    assert.deepEqual(
      steps.map((step) => [step.seq, step.kind, step.name, step.status]),
      [
        [1, 'model', 'keel.scripted:scripted', 'completed'],
        [2, 'tool', 'charge', 'completed'],
        [3, 'model', 'keel.scripted:scripted', 'completed'],
      ],
    );
    assert.deepEqual(steps[1]?.output, { content: '{"receipt":"5 USD"}', value: { receipt: '5 USD' }, channel: 'tool_output', guard: { fenced: true } });
    assert.ok(finished.usage.inputTokens > 0 && finished.usage.outputTokens > 0);
  });

  it('gives every tool call the stable key {runId}:{stepId}:{callIndex}', async () => {
    const { model } = recording([
      {
        toolCalls: [
          { name: 'charge', args: { amount: 1, currency: 'USD' } },
          { name: 'charge', args: { amount: 2, currency: 'EUR' } },
        ],
      },
      'Done.',
    ]);
    const finished = await run(agent(model));
    assert.deepEqual(charges, [`${finished.id}:1:0`, `${finished.id}:1:1`]);
    const keys = (await store.getSteps(finished.id)).map((step) => step.idempotencyKey);
    assert.deepEqual(keys, [null, `${finished.id}:1:0`, `${finished.id}:1:1`, null]);
  });

  it('sends arguments that are not JSON back to the model as a tool error and carries on', async () => {
    const { model, requests } = recording([
      { toolCalls: [{ name: 'charge', rawArguments: '{"amount": 5, currency: USD' }] },
      { toolCalls: [{ name: 'charge', args: { amount: 5, currency: 'USD' } }] },
      'Paid.',
    ]);
    const finished = await run(agent(model));

    assert.equal(finished.state, 'completed');
    assert.equal(charges.length, 1, 'only the corrected call charged');
    const feedback = requests[1]?.messages.at(-1) as ToolMessage;
    assert.equal(feedback.role, 'tool');
    assert.equal(feedback.isError, true);
    assert.match(feedback.content, /^Error: The arguments for charge are not valid JSON/);
    const steps = await store.getSteps(finished.id);
    assert.equal(steps[1]?.status, 'failed');
  });

  it('rejects arguments that break the zod schema without running the tool, naming the field', async () => {
    const { model, requests } = recording([
      { toolCalls: [{ name: 'charge', args: { amount: -3, currency: 'GBP' } }] },
      'I could not pay.',
    ]);
    const finished = await run(agent(model));

    assert.equal(finished.state, 'completed');
    assert.equal(charges.length, 0);
    const feedback = requests[1]?.messages.at(-1) as ToolMessage;
    assert.match(feedback.content, /Invalid arguments for charge/);
    assert.match(feedback.content, /at amount/);
    assert.match(feedback.content, /at currency/);
  });

  it('tells the model about a tool it invented, listing the real ones', async () => {
    const { model, requests } = recording([{ toolCalls: [{ name: 'refund', args: {} }] }, 'Sorry.']);
    const finished = await run(agent(model));

    assert.equal(finished.state, 'completed');
    const feedback = requests[1]?.messages.at(-1) as ToolMessage;
    assert.equal(feedback.content, 'Error: There is no tool named "refund". Available tools: charge.');
  });

  it('turns a tool that throws, or returns output that breaks its schema, into an error the model sees', async () => {
    const flaky = defineTool({
      name: 'flaky',
      description: 'Fails.',
      args: z.object({}),
      effect: 'none',
      run: () => {
        throw new Error('upstream said 503');
      },
    });
    const liar = defineTool({
      name: 'liar',
      description: 'Returns the wrong shape.',
      args: z.object({}),
      output: z.object({ ok: z.boolean() }),
      effect: 'none',
      run: () => ({ ok: 'yes' }) as unknown as { ok: boolean },
    });
    const { model, requests } = recording([
      { toolCalls: [{ name: 'flaky' }, { name: 'liar' }] },
      'Both failed.',
    ]);
    const finished = await run(agent(model, [flaky, liar]));

    assert.equal(finished.state, 'completed');
    const [first, second] = requests[1]?.messages.slice(-2) as ToolMessage[];
    assert.equal(first?.content, 'Error: flaky failed: upstream said 503');
    assert.match(second?.content ?? '', /^Error: liar returned output that does not match its schema/);
  });

  it('fails a run that reaches maxSteps, saying so, and keeps its steps', async () => {
    const { model } = recording(() => ({ toolCalls: [{ name: 'charge', args: { amount: 1, currency: 'USD' } }] }));
    const finished = await run(agent(model, [charge], 2));

    assert.equal(finished.state, 'failed');
    assert.equal(finished.error, 'payer reached maxSteps (2) without a final answer.');
    assert.equal((await store.getSteps(finished.id)).length, 4);
  });

  it('fails the run when the model fails, recording the failed model step', async () => {
    const broken: Model = {
      provider: 'test',
      name: 'down',
      generate: () => Promise.reject(new Error('connection refused')),
    };
    const finished = await run(agent(broken));

    assert.equal(finished.state, 'failed');
    assert.equal(finished.error, 'The model test:down failed (not a transient failure, not retried): connection refused');
    const [step] = await store.getSteps(finished.id);
    assert.equal(step?.status, 'failed');
    assert.equal(step?.error, 'connection refused');
  });

  it('cancels a run: the tool sees the abort and the run ends cancelled', async () => {
    let sawAbort = false;
    let started!: () => void;
    const toolStarted = new Promise<void>((resolve) => (started = resolve));
    const wait = defineTool({
      name: 'wait',
      description: 'Waits until cancelled.',
      args: z.object({}),
      effect: 'none',
      run: (_args, ctx) =>
        new Promise((_resolve, reject) => {
          started();
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(new Error('aborted'));
          });
        }),
    });
    const { model } = recording([{ toolCalls: [{ name: 'wait' }] }, 'never']);
    const handle = await runtime.start(agent(model, [wait]), { input: 'wait' });
    await toolStarted;
    handle.cancel();
    const finished = await handle.done;

    assert.equal(sawAbort, true);
    assert.equal(finished.state, 'cancelled');
    assert.equal(finished.error, 'Cancelled by the user.');
    const steps = await store.getSteps(finished.id);
    assert.equal(steps.at(-1)?.status, 'failed');
  });

  it('reports events in order, each step started before it finishes', async () => {
    const { model } = recording([
      { text: 'Paying.', toolCalls: [{ name: 'charge', args: { amount: 5, currency: 'USD' } }] },
      'Paid.',
    ]);
    const events: string[] = [];
    await run(agent(model), 'pay', (event) =>
      events.push(event.type === 'step_started' || event.type === 'step_finished' ? `${event.type}:${event.step.seq}` : event.type),
    );
    assert.deepEqual(events, [
      'run_started',
      'step_started:1',
      'model_delta',
      'step_finished:1',
      'step_started:2',
      'step_finished:2',
      'step_started:3',
      'model_delta',
      'step_finished:3',
      'run_finished',
    ]);
  });

  it('refuses a model spec it does not know before recording anything', async () => {
    const { model } = recording(['hi']);
    await assert.rejects(runtime.start(agent(model), { input: 'x', model: 'anthropic:claude' }), ModelSpecError);
    assert.deepEqual(await store.listRuns(), []);
  });

  it('runs with a model override and records which model ran', async () => {
    const { model } = recording(['from the agent']);
    const override = scriptedModel(['from the override'], { name: 'other' });
    const handle = await runtime.start(agent(model), { input: 'x', model: override });
    const finished = await handle.done;
    assert.equal(finished.result, 'from the override');
    assert.equal(finished.model, 'keel.scripted:other');
  });
});
