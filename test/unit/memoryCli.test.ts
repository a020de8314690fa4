import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MemoryItem, MemoryOpRecord, NamespaceSummary } from '../../src/runtime/memory/memoryStore';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import type { ThreadRecord } from '../../src/runtime/threads/threadStore';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');

/**
 * Remembers each input in `notes`, keeps the task's progress, and answers with the earlier user
 * messages of its conversation (in a thread, the earlier turns).
 */
const AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const remember = defineTool({
  name: 'remember',
  description: 'Remembers a note.',
  args: z.object({ text: z.string() }),
  effect: 'idempotent',
  run: async ({ text }, ctx) => (await ctx.memory.put('notes', 'last', text)).revision,
});

export default defineAgent({
  name: 'memo',
  instructions: 'Remember.',
  model: scriptedModel(({ input, toolResults, request }) => {
    if (toolResults.length === 0) return { toolCalls: [{ name: 'remember', args: { text: input } }] };
    if (toolResults.length === 1 && toolResults[0]?.name === 'remember' && request.tools.some((tool) => tool.name === 'update_progress')) {
      return { toolCalls: [{ name: 'update_progress', args: { done: [input], next: ['more'] } }] };
    }
    const earlier = request.messages.filter((message) => message.role === 'user' && message.content !== input).map((message) => message.content);
    return 'Noted ' + input + '; earlier: ' + (earlier.join(' | ') || 'nothing');
  }),
  tools: [remember],
});
`;

describe('keel threads, thread, memory, and run --thread/--task (real processes)', () => {
  const tempDir = useTempDirs();
  let cwd: string;
  let db: string;
  let agent: string;

  before(() => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  });

  beforeEach(() => {
    cwd = tempDir('keel-memory-cli-');
    db = join(cwd, 'runs.db');
    agent = join(cwd, 'memo.agent.ts');
    writeFileSync(agent, AGENT);
  });

  function keel(...args: string[]): Promise<Finished> {
    return runNode(KEEL, [...args, '--db', db], { cwd, env: testEnv() });
  }

  async function ok(...args: string[]): Promise<string> {
    const result = await keel(...args);
    assert.equal(result.code, 0, `keel ${args.join(' ')}: exit ${String(result.code)}\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  async function json<T>(...args: string[]): Promise<T> {
    return JSON.parse(await ok(...args, '--json')) as T;
  }

  it('continues a thread, lists, shows and deletes it', async () => {
    const first = await json<{ run: RunRecord }>('run', agent, '--input', 'alpha', '--thread', 'chat-1');
    assert.equal(first.run.threadId, 'chat-1');
    const second = await json<{ run: RunRecord }>('run', agent, '--input', 'beta', '--thread', 'chat-1');
    assert.equal(second.run.result, 'Noted beta; earlier: alpha');

    const [listed] = await json<ThreadRecord[]>('threads');
    assert.deepEqual([listed?.id, listed?.agent, listed?.runCount, listed?.title], ['chat-1', 'memo', 2, 'alpha']);
    assert.match(await ok('threads'), /^chat-1 {2}memo · 2 runs · .* {2}alpha$/m);
    const shown = await ok('thread', 'show', 'chat-1');
    assert.match(shown, /thread chat-1 · memo · 2 runs/);
    assert.match(shown, /you {2}alpha\n {2}memo {2}Noted alpha; earlier: nothing/);
    assert.match(shown, /you {2}beta\n {2}memo {2}Noted beta; earlier: alpha/);

    assert.match(await ok('thread', 'delete', 'chat-1'), /Deleted thread chat-1; its 2 runs stay in the database as runs of no thread\./);
    const missing = await keel('thread', 'show', 'chat-1');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /There is no thread chat-1/);
    assert.equal((await keel('thread', 'list')).code, 2);
  });

  it('lists, reads, writes, searches and deletes memory, keeping the channel of what it edits', async () => {
    await ok('run', agent, '--input', 'vegetarian, no mushrooms');
    assert.deepEqual((await json<NamespaceSummary[]>('memory')).map((entry) => [entry.namespace, entry.count]), [['notes', 1]]);
    const [item] = await json<MemoryItem[]>('memory', 'ls', 'notes');
    assert.deepEqual([item?.key, item?.value, item?.channel, item?.revision], ['last', 'vegetarian, no mushrooms', 'tool_output', 1]);

    assert.match(await ok('memory', 'put', 'notes', 'last', '{"diet":"vegetarian"}'), /Saved notes\/last \(revision 2, tool_output\)/);
    assert.match(await ok('memory', 'put', 'user:ada', 'seat', '--text', 'window seat please'), /Saved user:ada\/seat \(revision 1, user\)/);
    const edited = await json<MemoryItem>('memory', 'get', 'notes', 'last');
    assert.deepEqual(edited.value, { diet: 'vegetarian' });
    assert.match(edited.writtenBy, /^cli:/);
    assert.deepEqual(
      (await json<{ item: MemoryItem }[]>('memory', 'search', 'notes,user:ada', 'window')).map((hit) => hit.item.key),
      ['seat'],
    );
    const bad = await keel('memory', 'put', 'notes', 'x', 'not json');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /The value is not JSON/);

    assert.match(await ok('memory', 'delete', 'notes', 'last'), /Deleted notes\/last\./);
    assert.equal((await keel('memory', 'get', 'notes', 'last')).code, 1);
  });

  it('keeps progress notes per task and shows them with the run', async () => {
    const first = await json<{ run: RunRecord }>('run', agent, '--input', 'step one', '--task', 'move');
    assert.equal(first.run.taskId, 'move');
    const shown = await json<{ memoryOps: MemoryOpRecord[]; progress: MemoryItem | null }>('show', first.run.id);
    assert.deepEqual(shown.memoryOps.map((op) => [op.seq, op.op]), [
      [0, 'progress.get'],
      [2, 'put'],
      [4, 'progress.update'],
    ]);
    assert.deepEqual(shown.progress?.value, { done: ['step one'], inProgress: [], next: ['more'], openQuestions: [] });
    const text = await ok('show', first.run.id);
    assert.match(text, /task {3}move/);
    assert.match(text, /Memory\n {2}0\.0 progress\.get task:move\/progress → nothing\n {2}2\.0 put notes\/last → revision 1 \(tool_output\)/);
    assert.match(text, /Progress of task move .*\n {2}Done:\n {2}- step one\n/);
  });
});
