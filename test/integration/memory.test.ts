import * as assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly state: string;
  readonly threadId?: string | null;
  readonly result: string | null;
  readonly error: string | null;
}

/** What `keel._test.memoryView` reports. */
interface MemoryView {
  readonly groups: readonly { label: string; description: string; expandable: boolean }[];
  readonly threads: readonly { id: string; label: string; description: string; rows: readonly { label: string; description: string }[] }[];
  readonly namespaces: readonly { namespace: string; count: number; entries: readonly { key: string; description: string; channel: string; revision: number }[] }[];
}

/** What `keel._test.runsViewThreads` reports: the Threads group of the Runs view. */
interface ThreadRow {
  readonly id: string;
  readonly label: string;
  readonly description: string;
  readonly contextValue: string;
  readonly runs: readonly { runId: string; label: string; description: string }[];
}

/**
 * An agent that remembers each input in the memory namespace `notes:user:ada`, then answers with the
 * input and the earlier user messages of its conversation: in a thread, the earlier turns.
 */
const AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const remember = defineTool({
  name: 'remember',
  description: 'Remembers a note.',
  args: z.object({ text: z.string() }),
  effect: 'idempotent',
  run: async ({ text }, ctx) => {
    const item = await ctx.memory.put('notes:user:ada', 'last', text);
    return 'saved revision ' + item.revision;
  },
});

export default defineAgent({
  name: 'memo',
  instructions: 'Remember what you are told.',
  model: scriptedModel(({ input, toolResults, request }) => {
    if (toolResults.length === 0) return { toolCalls: [{ name: 'remember', args: { text: input } }] };
    const earlier = request.messages.filter((message) => message.role === 'user' && message.content !== input).map((message) => message.content);
    return 'Noted ' + input + '. Earlier: ' + (earlier.length > 0 ? earlier.join(' | ') : 'nothing');
  }),
  tools: [remember],
});
`;

describe('Keel in VS Code: threads and memory', () => {
  let agentFile: string;

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    agentFile = join(folder.uri.fsPath, 'memo.agent.ts');
    writeFileSync(agentFile, AGENT);
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
  });

  after(() => rmSync(agentFile, { force: true }));

  it('continues a thread from a run and from the Memory view, and shows its history there and in the Runs view', async () => {
    const first = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(agentFile), 'alpha');
    assert.equal(first?.state, 'completed', first?.error ?? '');
    assert.equal(first?.result, 'Noted alpha. Earlier: nothing');

    const second = await vscode.commands.executeCommand<Run | undefined>('keel.continueThread', first?.id, 'beta');
    assert.equal(second?.state, 'completed', second?.error ?? '');
    assert.equal(second?.result, 'Noted beta. Earlier: alpha', 'the run started from the earlier turn');
    const threadId = `thread_${(first?.id ?? '').slice('run_'.length)}`;
    assert.equal(second?.threadId, threadId);

    const third = await vscode.commands.executeCommand<Run | undefined>('keel.continueThread', { kind: 'thread', thread: { id: threadId } }, 'gamma');
    assert.equal(third?.result, 'Noted gamma. Earlier: alpha | beta');

    const view = await memoryView();
    const thread = view.threads.find((candidate) => candidate.id === threadId);
    assert.ok(thread, `thread ${threadId} is not in the Memory view`);
    assert.equal(thread.label, 'alpha');
    assert.equal(thread.description, `${threadId} · 3 runs`);
    assert.deepEqual(
      thread.rows.map((row) => row.label),
      ['You: alpha', 'memo: Noted alpha. Earlier: nothing', 'You: beta', 'memo: Noted beta. Earlier: alpha', 'You: gamma', 'memo: Noted gamma. Earlier: alpha | beta'],
    );

    // The Runs view lists the thread above the runs, with its runs in order, each by its input.
    const row = (await runsViewThreads()).find((candidate) => candidate.id === threadId);
    assert.ok(row, `thread ${threadId} is not in the Runs view`);
    assert.deepEqual([row.label, row.description, row.contextValue], ['alpha', `${threadId} · 3 runs`, 'thread']);
    assert.deepEqual(
      row.runs.map((turn) => [turn.runId, turn.label]),
      [first?.id, second?.id, third?.id].map((id, index) => [id, ['alpha', 'beta', 'gamma'][index]]),
    );
  });

  it('deletes a thread from the Runs view, keeping its runs', async () => {
    const row = (await runsViewThreads()).find((candidate) => candidate.label === 'alpha');
    assert.ok(row, 'the thread of the test before is not in the Runs view');
    assert.equal(await vscode.commands.executeCommand('keel.deleteThread', { kind: 'thread', thread: { id: row.id } }, true), true);
    assert.equal((await runsViewThreads()).find((candidate) => candidate.id === row.id), undefined);
    assert.equal((await memoryView()).threads.find((candidate) => candidate.id === row.id), undefined);
    const runs = await vscode.commands.executeCommand<readonly { runId: string }[]>('keel._test.runsView');
    for (const turn of row.runs) assert.ok(runs.some((run) => run.runId === turn.runId), `run ${turn.runId} went with its thread`);
  });

  it('shows memory namespaces and values, edits a value as JSON keeping its channel, and deletes it', async () => {
    const notes = (await memoryView()).namespaces.find((namespace) => namespace.namespace === 'notes:user:ada');
    assert.ok(notes, 'the namespace written by the agent is not in the Memory view');
    const [last] = notes.entries;
    assert.equal(last?.key, 'last');
    assert.equal(last?.channel, 'tool_output', 'a tool wrote it');
    assert.equal(last?.revision, 3);
    assert.match(last?.description ?? '', /^gamma · tool_output$/);

    const entry = { kind: 'entry', item: { namespace: 'notes:user:ada', key: 'last' } };
    await vscode.commands.executeCommand('keel.editMemory', entry);
    const editor = vscode.window.activeTextEditor;
    assert.ok(editor, 'no editor opened');
    assert.equal(editor.document.uri.scheme, 'keel-memory');
    // The breadcrumbs and the title read the URI's path: the namespace as it is, not percent-encoded.
    assert.equal(editor.document.uri.path, '/notes:user:ada/last.json');
    assert.equal(editor.document.getText(), '"gamma"\n');
    const whole = new vscode.Range(editor.document.positionAt(0), editor.document.positionAt(editor.document.getText().length));
    await editor.edit((edit) => edit.replace(whole, '{ "text": "gamma, checked" }\n'));
    assert.equal(await editor.document.save(), true, 'the edited value was not saved');

    const edited = (await memoryView()).namespaces.find((namespace) => namespace.namespace === 'notes:user:ada')?.entries[0];
    assert.equal(edited?.revision, 4);
    assert.equal(edited?.channel, 'tool_output', 'an edit does not make untrusted content trusted');
    assert.match(edited?.description ?? '', /^\{"text":"gamma, checked"\} · tool_output$/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');

    assert.equal(await vscode.commands.executeCommand('keel.deleteMemory', entry, true), true);
    assert.equal((await memoryView()).namespaces.find((namespace) => namespace.namespace === 'notes:user:ada'), undefined);
  });

  it('shows Threads and Namespaces with nothing in them as rows that say so and do not expand', async () => {
    // The tests before deleted the only thread and the only namespace.
    assert.deepEqual((await memoryView()).groups, [
      { label: 'Threads', description: 'none', expandable: false },
      { label: 'Namespaces', description: 'none', expandable: false },
    ]);
  });
});

function runsViewThreads(): Thenable<readonly ThreadRow[]> {
  return vscode.commands.executeCommand<readonly ThreadRow[]>('keel._test.runsViewThreads');
}

function memoryView(): Thenable<MemoryView> {
  return vscode.commands.executeCommand<MemoryView>('keel._test.memoryView');
}
