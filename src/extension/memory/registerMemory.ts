import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { Run } from '../../protocol/records';
import { truncate } from '../../shared/format';
import { followRun, reportRefusal, type FollowRunDeps } from '../ui/followRun';
import { runIdOf, type RunRow } from '../ui/runTarget';
import { MEMORY_SCHEME, MemoryDocuments, memoryUri } from './memoryDocuments';
import { MemoryTree, type MemoryNode } from './memoryTree';

export interface MemoryDeps extends FollowRunDeps {
  /** Fires when another process changed the run database. */
  readonly databaseChanged: vscode.Event<void>;
}

/** What Continue Thread… and the memory commands are given: a Runs view row, a Memory view row, or an id. */
type Target = string | RunRow | MemoryNode;

/**
 * Threads and memory in the editor: the Memory view (threads with their history, namespaces with
 * their values), Continue Thread… on a run or a thread, and editing and deleting values.
 */
export function registerMemory(context: vscode.ExtensionContext, deps: MemoryDeps): void {
  const { client } = deps;
  const tree = new MemoryTree(client);
  const documents = new MemoryDocuments(client, () => tree.refresh());
  const refresh = () => tree.refresh();
  context.subscriptions.push(
    tree,
    documents,
    vscode.workspace.registerFileSystemProvider(MEMORY_SCHEME, documents, { isCaseSensitive: true }),
    vscode.window.createTreeView('keel.memory', { treeDataProvider: tree, showCollapseAll: true }),
    vscode.commands.registerCommand('keel.refreshMemory', refresh),
    vscode.commands.registerCommand('keel.continueThread', (target?: Target, input?: string) => continueThread(deps, target, input)),
    vscode.commands.registerCommand('keel.editMemory', async (node?: MemoryNode) => {
      if (node?.kind !== 'entry') return;
      const document = await vscode.workspace.openTextDocument(memoryUri(node.item.namespace, node.item.key));
      await vscode.window.showTextDocument(document, { preview: false });
    }),
    vscode.commands.registerCommand('keel.deleteMemory', async (node?: MemoryNode, confirmed?: boolean) => {
      if (node?.kind !== 'entry') return false;
      const { namespace, key } = node.item;
      if (confirmed !== true && !(await confirm(`Delete ${namespace}/${key} from memory? Agents will no longer recall it.`))) return false;
      return run(deps, async () => {
        const { deleted } = await client.request('deleteMemory', { namespace, key });
        refresh();
        return deleted;
      });
    }),
    // From a thread row of the Memory view or of the Runs view, which have the same shape.
    vscode.commands.registerCommand('keel.deleteThread', async (node?: MemoryNode, confirmed?: boolean) => {
      if (node?.kind !== 'thread') return false;
      const { id } = node.thread;
      if (confirmed !== true && !(await confirm(`Delete thread ${id}? Its runs stay in the Runs view, but no later run continues it.`))) return false;
      return run(deps, async () => {
        const { deleted } = await client.request('deleteThread', { threadId: id });
        refresh();
        // The Runs view lists threads too.
        await vscode.commands.executeCommand('keel.refreshRuns');
        return deleted;
      });
    }),
    // For integration tests: what the Memory view shows, fully expanded.
    vscode.commands.registerCommand('keel._test.memoryView', () => tree.snapshot()),
  );
  // Memory written by another process (the CLI, a run elsewhere) shows up when the database changes.
  context.subscriptions.push(deps.databaseChanged(refresh));
}

const MEMORY_KINDS: ReadonlySet<string> = new Set<MemoryNode['kind']>(['group', 'thread', 'summary', 'turn', 'namespace', 'entry']);

/** A run id or a Runs view row, as opposed to a row of the Memory view. */
function isRunTarget(target: Target): target is string | RunRow {
  return typeof target === 'string' || !MEMORY_KINDS.has(target.kind);
}

async function confirm(question: string): Promise<boolean> {
  const yes = 'Delete';
  return (await vscode.window.showWarningMessage(question, { modal: true }, yes)) === yes;
}

async function run<T>(deps: MemoryDeps, action: () => Promise<T>): Promise<T | undefined> {
  try {
    return await action();
  } catch (error) {
    void reportRefusal(error, deps.log);
    return undefined;
  }
}

/**
 * Continue Thread…: a new run of the same agent file in the thread of a run (a run started alone
 * becomes the first turn of a new thread) or of a thread. Asks for the input unless given; the
 * run starts from the thread's earlier turns.
 */
async function continueThread(deps: MemoryDeps, target: Target | undefined, input: string | undefined): Promise<Run | undefined> {
  const { client } = deps;
  if (target === undefined) return undefined;
  let last: Run | undefined;
  let threadId: string;
  try {
    if (typeof target !== 'string' && (target.kind === 'thread' || target.kind === 'summary')) {
      threadId = target.thread.id;
      const { runs } = await client.request('getThread', { threadId });
      last = [...runs].reverse().find((candidate) => candidate.agentFile !== null);
    } else if (typeof target !== 'string' && target.kind === 'turn') {
      last = target.run;
      threadId = target.run.threadId ?? `thread_${target.run.id.slice('run_'.length)}`;
    } else if (isRunTarget(target)) {
      last = (await client.request('getRun', { runId: runIdOf(target) })).run;
      threadId = last.threadId ?? `thread_${last.id.slice('run_'.length)}`;
    } else {
      return undefined;
    }
  } catch (error) {
    void reportRefusal(error, deps.log);
    return undefined;
  }
  const agentFile = last?.agentFile;
  if (!last || !agentFile) {
    void vscode.window.showErrorMessage(`Keel cannot continue thread ${threadId}: none of its runs was started from an agent file.`);
    return undefined;
  }
  const text =
    input ??
    (await vscode.window.showInputBox({
      title: `Continue thread ${threadId} (${basename(agentFile)})`,
      prompt: last.state === 'completed' ? `${last.agent} said: ${truncate(last.result ?? '', 120)}` : `Your next message to ${last.agent}`,
      placeHolder: 'What next?',
      ignoreFocusOut: true,
    }));
  if (text === undefined) return undefined;
  const from = last;
  const model = vscode.workspace.getConfiguration('keel').get<string>('model')?.trim();
  return followRun(deps, `Keel · ${basename(agentFile)} · thread ${threadId}`, async () => {
    // A run started alone becomes the first turn of the thread it starts.
    if (!from.threadId) await client.request('attachThread', { runId: from.id, threadId });
    return client.request('startRun', { agentFile, input: text, threadId, ...(model ? { model } : {}) });
  });
}
