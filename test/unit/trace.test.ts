import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { z } from 'zod';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { RetryableError } from '../../src/runtime/effects/retry';
import { fence, fenceId } from '../../src/runtime/guard/fence';
import type { Model } from '../../src/runtime/model/model';
import { scriptedModel, type ScriptedTurn } from '../../src/runtime/model/scripted';
import { MAX_INPUT_MESSAGES, buildTrace, loadTraceSource, loadTraceTree, spanIdFor } from '../../src/runtime/trace/buildTrace';
import type { TraceSpan } from '../../src/runtime/trace/span';
import { useTraceRuns } from '../support/traceRuns';

/** The GenAI attribute names Keel may set, as the OpenTelemetry semantic conventions' registry spells them. */
const CONVENTION_NAMES = new Set([
  'gen_ai.operation.name',
  'gen_ai.provider.name',
  'gen_ai.request.model',
  'gen_ai.response.model',
  'gen_ai.response.finish_reasons',
  'gen_ai.usage.input_tokens',
  'gen_ai.usage.output_tokens',
  'gen_ai.agent.name',
  'gen_ai.conversation.id',
  'gen_ai.tool.name',
  'gen_ai.tool.call.id',
  'gen_ai.tool.type',
  'gen_ai.tool.call.arguments',
  'gen_ai.tool.call.result',
  'gen_ai.tool.definitions',
  'gen_ai.input.messages',
  'gen_ai.output.messages',
  'error.type',
]);

const CONTENT_NAMES = ['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.tool.call.arguments', 'gen_ai.tool.call.result', 'gen_ai.tool.definitions'];

const charge = defineTool({
  name: 'charge',
  description: 'Charge a card.',
  args: z.object({ amount: z.number() }),
  output: z.object({ receipt: z.string() }),
  effect: 'unsafe',
  run: ({ amount }) => ({ receipt: `R-${amount}` }),
});

function payer(script: readonly ScriptedTurn[], tools = [charge]): Agent {
  return defineAgent({ name: 'payer', instructions: 'Pay what you are asked.', model: scriptedModel(script, { name: 'pay-script' }), tools });
}

const PAY: readonly ScriptedTurn[] = [{ text: 'Charging 120.', toolCalls: [{ name: 'charge', args: { amount: 120 } }] }, 'Charged 120, receipt R-120.'];

/** The cost the store recorded, where it records one (0 otherwise). */
function costOf(value: unknown): number {
  const cost = (value as { costUsd?: unknown } | undefined)?.costUsd;
  return typeof cost === 'number' ? cost : 0;
}

function byName(spans: readonly TraceSpan[], name: string): TraceSpan {
  const span = spans.find((candidate) => candidate.name === name);
  assert.ok(span, `a span named ${name} among ${spans.map((candidate) => candidate.name).join(', ')}`);
  return span;
}

describe('trace: spans rebuilt from the journal', () => {
  const runs = useTraceRuns();

  it('names and nests spans as the GenAI conventions do: invoke_agent, then chat and execute_tool', async () => {
    const { run, source } = await runs.run(payer(PAY), 'pay 120');
    const spans = buildTrace(source);

    assert.deepEqual(
      spans.map((span) => [span.name, span.kind]),
      [
        ['invoke_agent payer', 'agent'],
        ['chat pay-script', 'model'],
        ['execute_tool charge', 'tool'],
        ['chat pay-script', 'model'],
      ],
    );
    const [root, firstChat, tool, lastChat] = spans as [TraceSpan, TraceSpan, TraceSpan, TraceSpan];
    assert.equal(root.parentSpanId, null);
    for (const child of [firstChat, tool, lastChat]) assert.equal(child.parentSpanId, root.spanId);
    for (const span of spans) {
      assert.equal(span.traceId, run.traceId);
      assert.match(span.spanId, /^[0-9a-f]{16}$/);
    }
    assert.equal(new Set(spans.map((span) => span.spanId)).size, spans.length, 'span ids are unique');
    assert.equal(root.spanId, spanIdFor(run.traceId));
    assert.equal(firstChat.spanId, spanIdFor(run.traceId, 1));

    assert.deepEqual(
      { ...root.attributes },
      {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.agent.name': 'payer',
        'gen_ai.conversation.id': run.id,
        'gen_ai.provider.name': 'keel.scripted',
        'gen_ai.request.model': 'pay-script',
        'gen_ai.response.model': 'pay-script',
        'gen_ai.usage.input_tokens': run.usage.inputTokens,
        'gen_ai.usage.output_tokens': run.usage.outputTokens,
        'keel.cost.usd': costOf(run),
        'keel.run.state': 'completed',
        'keel.step.count': 3,
      },
    );
    const [firstModelStep, toolStep] = source.steps;
    assert.equal(firstChat.attributes['gen_ai.operation.name'], 'chat');
    assert.equal(firstChat.attributes['gen_ai.provider.name'], 'keel.scripted');
    assert.equal(firstChat.attributes['gen_ai.request.model'], 'pay-script');
    assert.equal(firstChat.attributes['gen_ai.response.model'], 'pay-script');
    assert.deepEqual(firstChat.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
    assert.deepEqual(lastChat.attributes['gen_ai.response.finish_reasons'], ['stop']);
    const usage = (firstModelStep?.output as { usage: { inputTokens: number; outputTokens: number } }).usage;
    assert.equal(firstChat.attributes['gen_ai.usage.input_tokens'], usage.inputTokens);
    assert.equal(firstChat.attributes['gen_ai.usage.output_tokens'], usage.outputTokens);
    assert.equal(firstChat.attributes['keel.step.id'], 1);
    assert.equal(firstChat.attributes['keel.cost.usd'], costOf(firstModelStep));
    assert.deepEqual(firstChat.attributes['keel.tools.offered'], ['charge']);

    assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(tool.attributes['gen_ai.tool.name'], 'charge');
    assert.equal(tool.attributes['gen_ai.tool.type'], 'function');
    assert.equal(tool.attributes['gen_ai.tool.call.id'], 'call_1_1');
    assert.equal(tool.attributes['keel.idempotency_key'], toolStep?.idempotencyKey);
    assert.equal(tool.attributes['keel.idempotency_key'], `${run.id}:1:0`);
    assert.equal(tool.attributes['keel.effect'], 'unsafe');
    assert.equal(tool.attributes['keel.step.id'], 2);
    assert.equal(tool.attributes['keel.attempt'], 1);

    for (const span of spans) {
      assert.equal(span.status, 'ok');
      for (const name of Object.keys(span.attributes)) {
        assert.ok(CONVENTION_NAMES.has(name) || name.startsWith('keel.'), `${name} is a convention name or Keel's own`);
      }
    }
  });

  it('times each span as its step was journaled, children inside the run', async () => {
    const { run, source } = await runs.run(payer(PAY));
    const [root, ...children] = buildTrace(source) as [TraceSpan, ...TraceSpan[]];
    assert.equal(root.startTime, run.createdAt);
    assert.equal(root.endTime, run.endedAt);
    children.forEach((span, index) => {
      const step = source.steps[index];
      assert.equal(span.startTime, step?.startedAt);
      assert.equal(span.endTime, step?.endedAt);
      assert.ok(span.startTime >= root.startTime && (span.endTime ?? Infinity) <= (root.endTime ?? Infinity), `${span.name} lies inside the run`);
    });
    for (let index = 1; index < children.length; index++) {
      assert.ok((children[index]?.startTime ?? 0) >= (children[index - 1]?.endTime ?? 0), 'steps follow one another');
    }
  });

  it('gives the same spans every time it is built', async () => {
    const { run, source } = await runs.run(payer(PAY));
    const again = await loadTraceSource(runs.store(), run.id);
    assert.deepEqual(buildTrace(source), buildTrace(again));
  });

  it('captures prompts, completions, tool arguments and results only when asked, in the conventions shapes', async () => {
    const { source } = await runs.run(payer(PAY), 'pay 120');
    for (const span of buildTrace(source)) {
      for (const name of CONTENT_NAMES) assert.equal(span.attributes[name], undefined, `${span.name} has no ${name} by default`);
    }

    const spans = buildTrace(source, { captureContent: true });
    const [root, firstChat, tool, lastChat] = spans as [TraceSpan, TraceSpan, TraceSpan, TraceSpan];
    assert.deepEqual(JSON.parse(String(root.attributes['gen_ai.input.messages'])), [{ role: 'user', parts: [{ type: 'text', content: 'pay 120' }] }]);
    assert.deepEqual(JSON.parse(String(root.attributes['gen_ai.output.messages'])), [
      { role: 'assistant', parts: [{ type: 'text', content: 'Charged 120, receipt R-120.' }], finish_reason: 'stop' },
    ]);
    assert.deepEqual(JSON.parse(String(firstChat.attributes['gen_ai.output.messages'])), [
      {
        role: 'assistant',
        parts: [
          { type: 'text', content: 'Charging 120.' },
          { type: 'tool_call', id: 'call_1_1', name: 'charge', arguments: { amount: 120 } },
        ],
        finish_reason: 'tool_calls',
      },
    ]);
    assert.deepEqual(JSON.parse(String(firstChat.attributes['gen_ai.tool.definitions'])), [{ type: 'function', name: 'charge' }]);
    assert.deepEqual(JSON.parse(String(tool.attributes['gen_ai.tool.call.arguments'])), { amount: 120 });
    assert.deepEqual(JSON.parse(String(tool.attributes['gen_ai.tool.call.result'])), { receipt: 'R-120' });
    assert.deepEqual(JSON.parse(String(lastChat.attributes['gen_ai.input.messages'])), [
      { role: 'user', parts: [{ type: 'text', content: 'pay 120' }] },
      {
        role: 'assistant',
        parts: [
          { type: 'text', content: 'Charging 120.' },
          { type: 'tool_call', id: 'call_1_1', name: 'charge', arguments: { amount: 120 } },
        ],
      },
      {
        role: 'tool',
        // As the model read it: fenced as the output of charge.
        parts: [{ type: 'tool_call_response', id: 'call_1_1', result: fence('{"receipt":"R-120"}', { id: fenceId(source.run.traceId, 2), channel: 'tool_output', tool: 'charge', warnings: [] }) }],
      },
    ]);
  });

  it('records at most the last 50 messages as a chat span input, and says how many it left out', async () => {
    const ping = defineTool({ name: 'ping', description: 'Pongs.', args: z.object({ n: z.number() }), effect: 'none', run: ({ n }) => `pong ${n}` });
    const model = scriptedModel(({ turn }) => (turn < 30 ? { toolCalls: [{ name: 'ping', args: { n: turn } }] } : 'Pinged 30 times.'));
    const { source } = await runs.run(defineAgent({ name: 'pinger', instructions: '', model, tools: [ping], maxSteps: 40 }));
    const chats = buildTrace(source, { captureContent: true }).filter((span) => span.kind === 'model');
    const last = chats.at(-1);
    const messages = JSON.parse(String(last?.attributes['gen_ai.input.messages'])) as { role: string }[];
    assert.equal(messages.length, MAX_INPUT_MESSAGES);
    assert.equal(last?.attributes['keel.input.messages.omitted'], 61 - MAX_INPUT_MESSAGES);
    assert.equal(messages.at(-1)?.role, 'tool');
    assert.equal(chats[0]?.attributes['keel.input.messages.omitted'], undefined);
  });

  it('puts one span per failed attempt under its step', async () => {
    let calls = 0;
    const flaky = defineTool({
      name: 'flaky',
      description: 'Fails twice, then works.',
      args: z.object({}),
      effect: 'idempotent',
      run: () => {
        calls += 1;
        if (calls < 3) throw new RetryableError(`busy (${calls})`);
        return 'ok';
      },
    });
    const { source } = await runs.run(payer([{ toolCalls: [{ name: 'flaky' }] }, 'Done.'], [flaky]));
    const spans = buildTrace(source);
    const tool = byName(spans, 'execute_tool flaky');
    const attempts = spans.filter((span) => span.parentSpanId === tool.spanId);
    assert.deepEqual(
      attempts.map((span) => [span.name, span.kind, span.status, span.statusMessage, span.attributes['keel.attempt']]),
      [
        ['execute_tool flaky attempt 1', 'retry', 'error', 'busy (1)', 1],
        ['execute_tool flaky attempt 2', 'retry', 'error', 'busy (2)', 2],
      ],
    );
    assert.equal(tool.status, 'ok');
    assert.equal(tool.attributes['keel.attempt'], 3);
    assert.equal(tool.attributes['keel.effect'], 'idempotent');
    for (const attempt of attempts) {
      assert.equal(attempt.attributes['error.type'], source.steps[1]?.failedAttempts[0]?.reason);
      assert.equal(typeof attempt.attributes['keel.retry.delay_ms'], 'number');
      assert.ok(attempt.startTime >= tool.startTime && (attempt.endTime ?? 0) <= (tool.endTime ?? 0), 'an attempt lies inside its step');
    }
    assert.ok((attempts[0]?.endTime ?? 0) <= (attempts[1]?.startTime ?? 0), 'attempts follow one another');
  });

  it('marks failed steps and runs as errors with an error.type', async () => {
    const broken = defineTool({
      name: 'broken',
      description: 'Returns the wrong shape.',
      args: z.object({}),
      output: z.object({ id: z.string() }),
      effect: 'none',
      run: () => ({ nope: true }) as unknown as { id: string },
    });
    const { source } = await runs.run(payer([{ toolCalls: [{ name: 'broken' }] }, { toolCalls: [{ name: 'missing_tool' }] }, 'Gave up.'], [broken]));
    const spans = buildTrace(source);
    const tool = byName(spans, 'execute_tool broken');
    assert.equal(tool.status, 'error');
    assert.equal(tool.attributes['error.type'], 'tool_output_schema');
    assert.match(tool.statusMessage ?? '', /does not match its schema/);
    assert.equal(byName(spans, 'execute_tool missing_tool').attributes['error.type'], 'unknown_tool');

    const failing: Model = { provider: 'test', name: 'down', generate: () => Promise.reject(new Error('model is down')) };
    const failed = await runs.run(defineAgent({ name: 'payer', instructions: '', model: failing, modelRetry: { attempts: 1 } }));
    const [root, chat] = buildTrace(failed.source) as [TraceSpan, TraceSpan];
    assert.equal(failed.run.state, 'failed');
    assert.equal(root.status, 'error');
    assert.equal(root.attributes['error.type'], 'run_failed');
    assert.match(root.statusMessage ?? '', /model is down/);
    assert.equal(chat.name, 'chat down');
    assert.equal(chat.attributes['gen_ai.provider.name'], 'test');
    assert.equal(chat.status, 'error');
  });

  it('keeps one trace across a crash, a pause for a decision and two resumes, with an approval span', async () => {
    const deadOwner = `${hostname()}/999999/crashed`;
    let hang = true;
    let began!: () => void;
    const hung = new Promise<void>((resolve) => (began = resolve));
    const book = defineTool({
      name: 'book',
      description: 'Books, once.',
      args: z.object({}),
      effect: 'unsafe',
      run: () => {
        if (!hang) return 'booked';
        hang = false;
        began();
        return new Promise<string>(() => undefined);
      },
    });
    const agent = payer([{ toolCalls: [{ name: 'book' }] }, 'Booked.'], [book]);
    const store = runs.store();
    const first = await new Runtime({ store, owner: deadOwner }).start(agent, { input: 'book it' });
    await hung;
    const crashed = buildTrace(await loadTraceSource(store, first.runId));

    const paused = await (await new Runtime({ store }).resume(agent, first.runId)).done;
    assert.equal(paused.state, 'waiting_approval');
    const waiting = buildTrace(await loadTraceSource(store, first.runId));
    const pending = waiting.find((span) => span.kind === 'approval');
    assert.ok(pending);
    assert.equal(pending.name, 'keel.approval book');
    assert.equal(pending.endTime, null, 'a pending approval is still open');
    assert.equal(pending.status, 'unset');
    assert.equal(pending.attributes['keel.approval.status'], 'pending');
    assert.equal(waiting[0]?.endTime, null, 'a run waiting for a decision is still open');

    const [approval] = await store.listApprovals({ runId: first.runId });
    assert.ok(approval);
    await store.decideApproval(approval.id, { action: 'retry' }, { by: 'ada', via: 'cli', at: Date.now() });
    const done = await (await new Runtime({ store }).resume(agent, first.runId)).done;
    assert.equal(done.state, 'completed');
    const spans = buildTrace(await loadTraceSource(store, first.runId));

    assert.ok(spans.every((span) => span.traceId === crashed[0]?.traceId), 'every span is in the one trace');
    assert.equal(spans[0]?.spanId, crashed[0]?.spanId);
    assert.equal(byName(spans, 'chat pay-script').spanId, byName(crashed, 'chat pay-script').spanId, 'recorded steps keep their span ids');
    const decided = spans.find((span) => span.kind === 'approval');
    assert.equal(decided?.spanId, pending.spanId);
    assert.equal(decided?.parentSpanId, spans[0]?.spanId);
    assert.equal(decided?.startTime, approval.requestedAt);
    assert.equal(typeof decided?.endTime, 'number');
    assert.equal(decided?.attributes['keel.approval.decision'], 'retry');
    assert.equal(decided?.attributes['keel.approval.decided_by'], 'ada');
    assert.equal(decided?.attributes['keel.approval.kind'], 'unknown_outcome');
    const tool = byName(spans, 'execute_tool book');
    const interrupted = spans.filter((span) => span.parentSpanId === tool.spanId);
    assert.deepEqual(
      interrupted.map((span) => [span.name, span.attributes['error.type']]),
      [['execute_tool book attempt 1', 'interrupted']],
    );
    assert.equal(tool.status, 'ok');
    assert.equal(spans[0]?.status, 'ok');
  });
});

describe('trace: one trace per run tree', () => {
  const runs = useTraceRuns();
  /** What each tool saw as its traceparent, by tool name. */
  const seen = new Map<string, string>();

  const lookUp = defineTool({
    name: 'look_up',
    description: 'Looks a fact up.',
    args: z.object({ topic: z.string() }),
    effect: 'none',
    run: ({ topic }, ctx) => {
      seen.set('look_up', ctx.traceparent);
      return `${topic}: sunny`;
    },
  });
  const checker = defineAgent({ name: 'checker', instructions: 'Check.', model: scriptedModel(['Checked.'], { name: 'check-script' }) });
  const research = defineTool({
    name: 'ask_checker',
    description: 'Asks the checker.',
    args: z.object({}),
    effect: 'none',
    run: (_args, ctx) => ctx.subAgent(checker, 'check it'),
  });
  const researcher = defineAgent({
    name: 'researcher',
    instructions: 'Research.',
    model: scriptedModel([{ toolCalls: [{ name: 'look_up', args: { topic: 'Paris' } }] }, { toolCalls: [{ name: 'ask_checker' }] }, 'Paris is sunny.'], { name: 'research-script' }),
    tools: [lookUp, research],
  });
  const delegate = defineTool({
    name: 'researcher',
    description: 'Asks the researcher.',
    args: z.object({ question: z.string() }),
    effect: 'none',
    run: ({ question }, ctx) => {
      seen.set('researcher', ctx.traceparent);
      return ctx.subAgent(researcher, question);
    },
  });
  const travel = defineAgent({
    name: 'travel',
    instructions: 'Plan.',
    model: scriptedModel([{ toolCalls: [{ name: 'researcher', args: { question: 'Weather in Paris?' } }] }, 'Go: Paris is sunny.'], { name: 'travel-script' }),
    tools: [delegate],
  });

  it('nests each sub-agent run under the tool call that started it, in the same trace, every span id unique', async () => {
    const { run } = await runs.run(travel, 'Plan Paris');
    const spans = buildTrace(await loadTraceTree(runs.store(), run.id), { captureContent: true });

    const parentName = (span: TraceSpan) => spans.find((candidate) => candidate.spanId === span.parentSpanId)?.name ?? null;
    assert.deepEqual(
      spans.map((span) => [span.name, parentName(span)]),
      [
        ['invoke_agent travel', null],
        ['chat travel-script', 'invoke_agent travel'],
        ['execute_tool researcher', 'invoke_agent travel'],
        ['chat travel-script', 'invoke_agent travel'],
        ['invoke_agent researcher', 'execute_tool researcher'],
        ['chat research-script', 'invoke_agent researcher'],
        ['execute_tool look_up', 'invoke_agent researcher'],
        ['chat research-script', 'invoke_agent researcher'],
        ['execute_tool ask_checker', 'invoke_agent researcher'],
        ['chat research-script', 'invoke_agent researcher'],
        ['invoke_agent checker', 'execute_tool ask_checker'],
        ['chat check-script', 'invoke_agent checker'],
      ],
    );
    assert.equal(new Set(spans.map((span) => span.spanId)).size, spans.length, 'no two spans share an id');
    assert.deepEqual(new Set(spans.map((span) => span.traceId)), new Set([run.traceId]));
    const inner = byName(spans, 'invoke_agent researcher');
    assert.equal(inner.attributes['gen_ai.input.messages'], JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] }]));
    assert.notEqual(inner.attributes['gen_ai.conversation.id'], run.id, 'the sub-agent span names its own run');
  });

  it('gives each step the traceparent of its own span, in a sub-agent run as in its parent', async () => {
    seen.clear();
    const { run } = await runs.run(travel, 'Plan Paris');
    const spans = buildTrace(await loadTraceTree(runs.store(), run.id));
    for (const tool of ['researcher', 'look_up']) {
      assert.equal(seen.get(tool), `00-${run.traceId}-${byName(spans, `execute_tool ${tool}`).spanId}-01`, tool);
    }
  });

  it('builds a sub-agent run alone with the same span ids, rooted at its own run', async () => {
    const { run } = await runs.run(travel, 'Plan Paris');
    const whole = buildTrace(await loadTraceTree(runs.store(), run.id));
    const [child] = await runs.store().childRuns(run.id);
    assert.ok(child);
    const alone = buildTrace(await loadTraceTree(runs.store(), child.id));
    assert.equal(alone[0]?.name, 'invoke_agent researcher');
    assert.equal(alone[0]?.parentSpanId, null);
    const ids = new Set(whole.map((span) => span.spanId));
    assert.ok(alone.every((span) => ids.has(span.spanId)), 'every span of the sub-agent alone is the same span in the whole trace');
    assert.equal(alone.length, whole.length - 4, 'the sub-agent and its own sub-agent, without the parent’s four spans');
  });
});
