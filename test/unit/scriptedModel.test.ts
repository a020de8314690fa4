import assert from 'node:assert/strict';
import { ModelError } from '../../src/runtime/errors';
import type { AssistantMessage, Message, ModelRequest, ToolMessage } from '../../src/runtime/model/model';
import { scriptedModel, type ScriptContext } from '../../src/runtime/model/scripted';

const system: Message = { role: 'system', content: 'You are a travel assistant.' };

function conversation(...rest: Message[]): ModelRequest {
  return { messages: [system, ...rest], tools: [] };
}

function assistant(content: string | null, ...calls: { id: string; name: string; arguments: string }[]): AssistantMessage {
  return { role: 'assistant', content, toolCalls: calls };
}

function toolResult(toolCallId: string, content: string, isError = false): ToolMessage {
  return { role: 'tool', toolCallId, name: 'get_weather', content, isError };
}

describe('scriptedModel', () => {
  it('answers each turn from its script, the turn being the number of assistant messages so far', async () => {
    const model = scriptedModel(['first', 'second', 'third']);
    const opening = conversation({ role: 'user', content: 'hi' });
    const later = conversation(
      { role: 'user', content: 'hi' },
      assistant('first'),
      { role: 'user', content: 'more' },
      assistant('second'),
      { role: 'user', content: 'again' },
    );
    assert.equal((await model.generate(opening)).message.content, 'first');
    assert.equal((await model.generate(later)).message.content, 'third');
  });

  it('gives the same answer to the same conversation however often it is asked', async () => {
    const model = scriptedModel(['first', 'second']);
    const request = conversation({ role: 'user', content: 'hi' });
    const once = await model.generate(request);
    const twice = await model.generate(request);
    assert.equal(once.message.content, 'first');
    assert.deepEqual(twice, once);
  });

  it('plays tool calls, with arguments written as JSON and ids fixed by turn and position', async () => {
    const model = scriptedModel([
      { text: 'Checking.', toolCalls: [{ name: 'get_weather', args: { city: 'Paris' } }, { name: 'get_time' }] },
      { toolCalls: [{ name: 'get_weather', args: { city: 'Rome' } }] },
    ]);
    const first = await model.generate(conversation({ role: 'user', content: 'Paris?' }));
    assert.deepEqual(first.message, {
      role: 'assistant',
      content: 'Checking.',
      toolCalls: [
        { id: 'call_1_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'call_1_2', name: 'get_time', arguments: '{}' },
      ],
    });
    assert.equal(first.finishReason, 'tool_calls');
    const second = await model.generate(
      conversation({ role: 'user', content: 'Paris?' }, first.message, toolResult('call_1_1', '21C'), toolResult('call_1_2', '10:00')),
    );
    assert.deepEqual(second.message.toolCalls, [{ id: 'call_2_1', name: 'get_weather', arguments: '{"city":"Rome"}' }]);
    assert.equal(second.message.content, null);
  });

  it('passes raw arguments through even when they are not valid JSON', async () => {
    const model = scriptedModel([{ toolCalls: [{ name: 'get_weather', rawArguments: '{"city": "Par' }] }]);
    const response = await model.generate(conversation({ role: 'user', content: 'weather' }));
    assert.equal(response.message.toolCalls[0]?.arguments, '{"city": "Par');
  });

  it('gives a function script the input, the turn and the tool results since its last turn', async () => {
    const seen: ScriptContext[] = [];
    const model = scriptedModel((context) => {
      seen.push(context);
      return `turn ${context.turn} for ${context.input}`;
    });
    const call = { id: 'call_1_1', name: 'get_weather', arguments: '{}' };
    const oldResult = toolResult('call_0', 'stale');
    const fresh = [toolResult('call_1_1', '21C'), toolResult('call_1_2', 'bad arguments', true)];
    const request = conversation(
      { role: 'user', content: 'first question' },
      assistant(null, { ...call, id: 'call_0' }),
      oldResult,
      assistant('done'),
      { role: 'user', content: 'Weather in Paris?' },
      assistant(null, call),
      ...fresh,
    );
    const response = await model.generate(request);
    assert.equal(response.message.content, 'turn 3 for Weather in Paris?');
    assert.equal(seen.length, 1);
    const context = seen[0];
    assert.ok(context);
    assert.equal(context.turn, 3);
    assert.equal(context.input, 'Weather in Paris?');
    assert.deepEqual(context.toolResults, fresh);
    assert.equal(context.request, request);
  });

  it('gives a function script turn 0, no tool results and the user message on the first call', async () => {
    let context: ScriptContext | undefined;
    const model = scriptedModel((c) => {
      context = c;
      return 'ok';
    });
    await model.generate(conversation({ role: 'user', content: 'Plan a trip' }));
    assert.equal(context?.turn, 0);
    assert.equal(context.input, 'Plan a trip');
    assert.deepEqual(context.toolResults, []);
  });

  it('raises a ModelError naming the model and the turn when the script runs out', async () => {
    const model = scriptedModel(['only answer'], { name: 'travel-script' });
    const request = conversation({ role: 'user', content: 'hi' }, assistant('only answer'), { role: 'user', content: 'and?' });
    await assert.rejects(model.generate(request), (error: unknown) => {
      assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
      assert.match(error.message, /"travel-script"/);
      assert.match(error.message, /turn 2\b/);
      return true;
    });
  });

  it('rejects, rather than throwing synchronously, when its signal is already aborted', async () => {
    const model = scriptedModel(['never']);
    const controller = new AbortController();
    const reason = new Error('cancelled by the user');
    controller.abort(reason);
    let pending: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      pending = model.generate(conversation({ role: 'user', content: 'hi' }), { signal: controller.signal });
    });
    await assert.rejects(pending ?? Promise.resolve(), (error: unknown) => error === reason);
  });

  it('streams its text once to onTextDelta and reports a stop', async () => {
    const deltas: string[] = [];
    const model = scriptedModel(['Here is your plan.', { toolCalls: [{ name: 'book' }] }], { name: 'demo' });
    const response = await model.generate(conversation({ role: 'user', content: 'plan' }), { onTextDelta: (d) => deltas.push(d) });
    assert.deepEqual(deltas, ['Here is your plan.']);
    assert.equal(response.finishReason, 'stop');
    assert.equal(response.model, 'demo');
    assert.equal(model.provider, 'keel.scripted');
  });

  it('estimates usage from the size of the conversation and of the answer', async () => {
    const model = scriptedModel(['short', 'a much, much longer answer than the first one was']);
    const first = await model.generate(conversation({ role: 'user', content: 'hi' }));
    const second = await model.generate(
      conversation({ role: 'user', content: 'hi' }, first.message, { role: 'user', content: 'a longer follow-up question' }),
    );
    assert.ok(first.usage.inputTokens > 0 && first.usage.outputTokens > 0);
    assert.ok(second.usage.inputTokens > first.usage.inputTokens);
    assert.ok(second.usage.outputTokens > first.usage.outputTokens);
  });
});
