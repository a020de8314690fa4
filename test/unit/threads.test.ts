import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { unfence } from '../../src/runtime/guard/fence';
import { defineAgent, defineTool, type Agent, type AgentConfig } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { Message, Model, ModelRequest } from '../../src/runtime/model/model';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { planWindow, summaryRequest, type LoadedThread } from '../../src/runtime/threads/threadContext';
import { buildTrace, loadTraceSource } from '../../src/runtime/trace/buildTrace';
import { useTempDirs } from '../support/tempDir';

const DEAD_OWNER = `${hostname()}/999999/crashed`;

/** A model that records every request it gets, and can hang on one call the way a killed process leaves it. */
function recording(script: Script, name = 'chat', hangOn?: (request: ModelRequest) => boolean): Model & { readonly requests: ModelRequest[]; hung: Promise<void> } {
  const inner = scriptedModel(script, { name });
  const requests: ModelRequest[] = [];
  let began: () => void = () => undefined;
  let hang = hangOn !== undefined;
  const hung = new Promise<void>((resolve) => (began = resolve));
  return {
    ...inner,
    requests,
    hung,
    generate(request, options) {
      requests.push(request);
      if (hang && hangOn?.(request)) {
        hang = false;
        began();
        return new Promise(() => undefined);
      }
      return inner.generate(request, options);
    },
  };
}

/** Answers with the user lines of the transcript it is given, so every summary shows what it covered. */
const summarizer = (): ReturnType<typeof recording> =>
  recording(({ request }) => {
    const prompt = request.messages.at(-1)?.content ?? '';
    const said = [...String(prompt).matchAll(/^User: (.*)$/gm)].map((match) => match[1]);
    const sofar = /The summary so far:\n(.*)\n/.exec(String(prompt))?.[1] ?? '';
    return `${sofar === '(none yet)' ? '' : `${sofar}; `}said ${said.join(', ')}`;
  }, 'summarizer');

function text(message: Message | undefined): string {
  return message && 'content' in message ? (message.content ?? '') : '';
}

describe('threads: a run continues the conversation of earlier runs', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;
  let clock: number;
  const now = () => (clock += 10);

  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-threads-'), 'keel.db'));
    clock = 1_790_000_000_000;
  });
  afterEach(() => store.close());

  function agentWith(model: Model, config: Partial<AgentConfig> = {}): Agent {
    return defineAgent({ name: 'chat', instructions: 'Be brief.', model, ...config });
  }

  async function run(agent: Agent, input: string, threadId = 't1', runtime = new Runtime({ store, now })) {
    const stopped = await (await runtime.start(agent, { input, threadId })).done;
    assert.equal(stopped.state, 'completed', stopped.error ?? '');
    return stopped;
  }

  it("starts with the earlier runs' inputs and answers, and records the thread", async () => {
    const model = recording(({ input }) => `You said: ${input}`);
    const agent = agentWith(model);
    const first = await run(agent, 'My name is Ada.');
    const second = await run(agent, 'What is my name?');

    assert.equal(first.threadId, 't1');
    assert.equal(second.threadId, 't1');
    assert.deepEqual(model.requests[1]?.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'You said: My name is Ada.', toolCalls: [] },
      { role: 'user', content: 'What is my name?' },
    ]);
    const thread = await store.threads.get('t1');
    assert.equal(thread?.agent, 'chat');
    assert.equal(thread?.title, 'My name is Ada.');
    assert.equal(thread?.runCount, 2);
    assert.deepEqual(
      (await store.threadRuns('t1')).map((each) => each.id),
      [first.id, second.id],
    );
  });

  it('keeps threads apart, leaves runs without a thread alone, and refuses a thread of another agent', async () => {
    const model = recording(({ input }) => `ok ${input}`);
    const agent = agentWith(model);
    await run(agent, 'in one', 'one');
    await run(agent, 'in two', 'two');
    await (await new Runtime({ store, now }).start(agent, { input: 'alone' })).done;
    assert.deepEqual(model.requests[1]?.messages.map(text), ['Be brief.', 'in two']);
    assert.deepEqual(model.requests[2]?.messages.map(text), ['Be brief.', 'alone']);

    const other = defineAgent({ name: 'other', instructions: '', model });
    await assert.rejects(new Runtime({ store, now }).start(other, { input: 'hi', threadId: 'one' }), /Thread one is a conversation with the agent "chat", not "other"/);
    await assert.rejects(new Runtime({ store, now }).start(agent, { input: 'hi', threadId: 'no spaces' }), /A thread id is 1-128 letters/);
  });

  it('past the window, summarizes the older turns in a recorded model call and keeps the newest', async () => {
    const model = recording(({ input }) => `a-${input}`);
    const summary = summarizer();
    const agent = agentWith(model, { thread: { maxMessages: 4, summaryModel: summary } });
    for (const input of ['one', 'two', 'three']) await run(agent, input);
    assert.equal(summary.requests.length, 0, 'within the window: no summary');

    const fourth = await run(agent, 'four');
    assert.equal(summary.requests.length, 1);
    assert.deepEqual(summary.requests[0]?.messages.map((message) => message.role), ['system', 'user']);
    assert.match(text(summary.requests[0]?.messages[1]), /^The summary so far:\n\(none yet\)\n\nTurns to add to it:\nUser: one\nAssistant: a-one\nUser: two\nAssistant: a-two$/);
    assert.deepEqual(model.requests.at(-1)?.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'system', content: 'Summary of the earlier conversation in this thread:\nsaid one, two' },
      { role: 'user', content: 'three' },
      { role: 'assistant', content: 'a-three', toolCalls: [] },
      { role: 'user', content: 'four' },
    ]);
    const [step1, step2] = await store.getSteps(fourth.id);
    assert.equal(step1?.kind, 'model');
    assert.equal(step1?.name, 'keel.scripted:summarizer');
    assert.deepEqual((step1?.input as Record<string, unknown>)['purpose'], 'thread_summary');
    assert.equal(step2?.name, 'keel.scripted:chat');
    const thread = await store.threads.get('t1');
    assert.equal(thread?.summary?.text, 'said one, two');
    assert.equal(thread?.summary?.coveredRuns, 2);
    assert.equal(thread?.summary?.runId, fourth.id);
    assert.equal(thread?.summary?.seq, 1);

    await run(agent, 'five');
    assert.equal(summary.requests.length, 1, 'back within the window: the stored summary is used, no new call');
    assert.deepEqual(model.requests.at(-1)?.messages.map(text), ['Be brief.', 'Summary of the earlier conversation in this thread:\nsaid one, two', 'three', 'a-three', 'four', 'a-four', 'five']);

    await run(agent, 'six');
    assert.equal(summary.requests.length, 2);
    assert.match(text(summary.requests[1]?.messages[1]), /^The summary so far:\nsaid one, two\n\nTurns to add to it:\nUser: three\n/);
    assert.deepEqual(model.requests.at(-1)?.messages.map(text), ['Be brief.', 'Summary of the earlier conversation in this thread:\nsaid one, two; said three, four', 'five', 'a-five', 'six']);
    assert.equal((await store.threads.get('t1'))?.summary?.coveredRuns, 4);
  });

  it('summarizes by tokens too, and the summary call is a span of the run', async () => {
    const model = recording(({ input }) => `a-${input}`);
    const summary = summarizer();
    const agent = agentWith(model, { thread: { maxTokens: 60, summaryModel: summary } });
    await run(agent, 'x'.repeat(100));
    const second = await run(agent, 'short');
    assert.equal(summary.requests.length, 1);
    const spans = buildTrace(await loadTraceSource(store, second.id));
    const summarySpan = spans.find((span) => span.attributes['keel.model.purpose'] === 'thread_summary');
    assert.equal(summarySpan?.name, 'chat summarizer');
    assert.ok(spans.some((span) => span.name === 'keel.memory.thread.load t1' && span.parentSpanId === spans[0]?.spanId));
  });

  it('on resume, reads the thread and the summary from the journal, even when the thread changed since', async () => {
    const model = recording(({ input }) => `a-${input}`);
    const summary = summarizer();
    const agent = agentWith(model, { thread: { maxMessages: 4, summaryModel: summary } });
    for (const input of ['one', 'two', 'three']) await run(agent, input);

    const hanging = recording(({ input }) => `a-${input}`, 'chat', (request) => text(request.messages.at(-1)) === 'four');
    const crashing = agentWith(hanging, { thread: { maxMessages: 4, summaryModel: summary } });
    const handle = await new Runtime({ store, now, owner: DEAD_OWNER }).start(crashing, { input: 'four', threadId: 't1' });
    await hanging.hung;
    assert.equal(summary.requests.length, 1);
    const firstRequest = hanging.requests[0];

    // Meanwhile the thread changes: a newer summary that, read again, would replace the turns.
    const [, , third] = await store.threadRuns('t1');
    await store.threads.setSummary('t1', { text: 'tampered', channel: 'user', throughRunId: third?.id ?? '', coveredRuns: 99, runId: 'x', seq: 1, at: 0 });

    const resumed = await (await new Runtime({ store, now }).resume(agentWith(model, { thread: { maxMessages: 4, summaryModel: summary } }), handle.runId)).done;
    assert.equal(resumed.state, 'completed', resumed.error ?? '');
    assert.equal(summary.requests.length, 1, 'the summary came from the journal');
    assert.deepEqual(model.requests.at(-1)?.messages, firstRequest?.messages, 'the resumed run sends what the first process sent');
    assert.equal(resumed.result, 'a-four');
  });

  it("brings earlier runs' tool calls when asked, and fences a summary of tool output as untrusted", async () => {
    const lookup = defineTool({ name: 'lookup', description: 'Looks up.', args: z.object({ q: z.string() }), effect: 'none', run: ({ q }) => `found ${q}` });
    const model = recording(({ toolResults, input }) => (toolResults.length === 0 ? { toolCalls: [{ name: 'lookup', args: { q: input } }] } : `done ${input}`));
    const summary = summarizer();
    const agent = agentWith(model, { tools: [lookup], thread: { toolExchanges: true, maxMessages: 6, summaryModel: summary } });
    await run(agent, 'one');
    await run(agent, 'two');
    const history = model.requests.at(-2)?.messages ?? [];
    assert.deepEqual(
      history.map((message) => message.role),
      ['system', 'user', 'assistant', 'tool', 'assistant', 'user'],
    );
    assert.ok(text(history[3]).includes('found one'), 'the tool result as the model read it');

    await run(agent, 'three');
    assert.equal(summary.requests.length, 1);
    assert.match(text(summary.requests[0]?.messages[1]), /Tool result of lookup:\n<<keel:tool_output id=\w+ tool=lookup>>\n[^\n]*\n---\nfound one\n<<end keel:tool_output id=\w+>>\nAssistant: done one/);
    const fenced = model.requests.at(-2)?.messages[1];
    assert.equal(fenced?.role, 'user', 'an untrusted summary is not given as system text');
    assert.match(text(fenced), /^<<keel:tool_output id=[0-9a-f]{12} tool=thread_t1_summary>>\nBelow, .* is the thread t1 summary, which Keel keeps/);
    assert.equal(unfence(text(fenced)), 'Summary of the earlier conversation in this thread:\nsaid one, two');
    assert.equal((await store.threads.get('t1'))?.summary?.channel, 'tool_output');
  });

  it('plans the window from whole runs: within it all stay; past it the newest half-window stays', () => {
    const turns = (runId: string, count: number) => ({
      runId,
      channel: 'user' as const,
      messages: Array.from({ length: count }, (_, index): Message => ({ role: index % 2 === 0 ? 'user' : 'assistant', content: 'x', toolCalls: [] }) as Message),
    });
    const loaded: LoadedThread = { threadId: 't', summary: null, runs: [turns('a', 2), turns('b', 4), turns('c', 2)] };
    const window = { maxMessages: 8, maxTokens: 10_000, toolExchanges: false, summaryModel: undefined };
    assert.deepEqual(planWindow(loaded, window).overflow, []);
    const tight = planWindow(loaded, { ...window, maxMessages: 6 });
    assert.deepEqual(tight.keep.map((each) => each.runId), ['c']);
    assert.deepEqual(tight.overflow.map((each) => each.runId), ['a', 'b']);
    assert.deepEqual(planWindow(loaded, { ...window, maxMessages: 2 }).keep.map((each) => each.runId), [], 'nothing fits half of it');
    assert.deepEqual(summaryRequest(null, []), summaryRequest(null, []), 'the prompt is deterministic');
  });

  it('lists threads, attaches a run started alone, and deletes a thread leaving its runs', async () => {
    const model = recording(({ input }) => `a-${input}`);
    const agent = agentWith(model);
    const alone = await (await new Runtime({ store, now }).start(agent, { input: 'first alone' })).done;
    const attached = await store.threads.attachRun(alone.id, 'later', now());
    assert.equal(attached.runCount, 1);
    assert.equal(attached.title, 'first alone');
    await run(agent, 'then in it', 'later');
    assert.deepEqual(model.requests.at(-1)?.messages.map(text), ['Be brief.', 'first alone', 'a-first alone', 'then in it']);
    assert.deepEqual((await store.threads.list()).map((thread) => [thread.id, thread.runCount]), [['later', 2]]);

    assert.deepEqual(await store.threads.delete('later'), { deleted: true, detachedRuns: 2 });
    assert.equal(await store.threads.get('later'), undefined);
    assert.equal((await store.getRun(alone.id))?.threadId, null);
    assert.deepEqual(await store.threads.delete('later'), { deleted: false, detachedRuns: 0 });
  });
});
