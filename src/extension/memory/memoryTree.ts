import * as vscode from 'vscode';
import { truncate } from '../../shared/format';
import type { MemoryItem, NamespaceSummary, Run, Thread } from '../../protocol/records';
import type { RuntimeClient } from '../client/runtimeClient';

export type MemoryNode =
  /** A group carries its rows, read with it, so an empty one does not offer to expand. */
  | { readonly kind: 'group'; readonly group: 'threads' | 'namespaces'; readonly children: readonly MemoryNode[] }
  | { readonly kind: 'thread'; readonly thread: Thread }
  | { readonly kind: 'summary'; readonly thread: Thread }
  | { readonly kind: 'turn'; readonly run: Run; readonly role: 'user' | 'agent' }
  | { readonly kind: 'namespace'; readonly namespace: NamespaceSummary }
  | { readonly kind: 'entry'; readonly item: MemoryItem };

/** What the view shows, as plain data (for tests). */
export interface MemoryViewSnapshot {
  readonly groups: readonly { label: string; description: string; expandable: boolean }[];
  readonly threads: readonly { id: string; label: string; description: string; rows: readonly { label: string; description: string }[] }[];
  readonly namespaces: readonly { namespace: string; count: number; entries: readonly { key: string; description: string; channel: string; revision: number }[] }[];
}

/**
 * The Memory view: threads with their history (summary, then each run's input and answer) and
 * the namespaces of long-term memory with their values. Values open as JSON documents to edit;
 * rows have Delete. It reads through the runtime process, like the Runs view.
 */
export class MemoryTree implements vscode.TreeDataProvider<MemoryNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<MemoryNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly client: RuntimeClient) {
    this.disposables.push(
      client.onRunEvent((event) => {
        if (event.type === 'run_finished') this.refresh();
      }),
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(node?: MemoryNode): Promise<MemoryNode[]> {
    if (!node) {
      const [threads, namespaces] = await Promise.all([this.client.request('listThreads', { limit: 100 }), this.client.request('listMemoryNamespaces', {})]);
      return [
        { kind: 'group', group: 'threads', children: threads.map((thread): MemoryNode => ({ kind: 'thread', thread })) },
        { kind: 'group', group: 'namespaces', children: namespaces.map((namespace): MemoryNode => ({ kind: 'namespace', namespace })) },
      ];
    }
    switch (node.kind) {
      case 'group':
        return [...node.children];
      case 'thread': {
        const { thread, runs } = await this.client.request('getThread', { threadId: node.thread.id });
        return [
          ...(thread.summary ? [{ kind: 'summary', thread } as const] : []),
          ...runs.flatMap((run): MemoryNode[] => [
            { kind: 'turn', run, role: 'user' },
            { kind: 'turn', run, role: 'agent' },
          ]),
        ];
      }
      case 'namespace':
        return (await this.client.request('listMemory', { namespace: node.namespace.namespace })).map((item): MemoryNode => ({ kind: 'entry', item }));
      case 'summary':
      case 'turn':
      case 'entry':
        return [];
    }
  }

  getTreeItem(node: MemoryNode): vscode.TreeItem {
    switch (node.kind) {
      case 'group': {
        const empty = node.children.length === 0;
        const item = new vscode.TreeItem(node.group === 'threads' ? 'Threads' : 'Namespaces', empty ? vscode.TreeItemCollapsibleState.None : vscode.TreeItemCollapsibleState.Expanded);
        // The id changes with emptiness: VS Code keeps a row's expansion by id, and an empty group has none.
        item.id = `group:${node.group}${empty ? ':empty' : ''}`;
        if (empty) item.description = 'none';
        item.iconPath = new vscode.ThemeIcon(node.group === 'threads' ? 'comment-discussion' : 'database');
        item.contextValue = `group.${node.group}`;
        return item;
      }
      case 'thread':
        return threadItem(node.thread);
      case 'summary': {
        const summary = node.thread.summary;
        const item = new vscode.TreeItem('Summary of earlier turns');
        item.description = truncate(summary?.text ?? '', 80);
        item.iconPath = new vscode.ThemeIcon('note');
        item.tooltip = new vscode.MarkdownString().appendMarkdown(`Covers the first ${summary?.coveredRuns ?? 0} runs (${summary?.channel ?? 'user'}):\n\n`).appendText(summary?.text ?? '');
        return item;
      }
      case 'turn':
        return turnItem(node.run, node.role);
      case 'namespace': {
        const item = new vscode.TreeItem(node.namespace.namespace, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `namespace:${node.namespace.namespace}`;
        item.description = `${node.namespace.count} value${node.namespace.count === 1 ? '' : 's'}`;
        item.iconPath = new vscode.ThemeIcon('symbol-namespace');
        item.contextValue = 'namespace';
        return item;
      }
      case 'entry':
        return entryItem(node.item);
    }
  }

  /** Both groups, fully expanded. */
  async snapshot(): Promise<MemoryViewSnapshot> {
    const threads = await this.client.request('listThreads', { limit: 100 });
    const namespaces = await this.client.request('listMemoryNamespaces', {});
    const groups = (await this.getChildren()).map((group) => {
      const item = this.getTreeItem(group);
      return { label: String(item.label), description: String(item.description ?? ''), expandable: item.collapsibleState !== vscode.TreeItemCollapsibleState.None };
    });
    return {
      groups,
      threads: await Promise.all(
        threads.map(async (thread) => {
          const item = threadItem(thread);
          const rows = await this.getChildren({ kind: 'thread', thread });
          return {
            id: thread.id,
            label: String(item.label),
            description: String(item.description),
            rows: rows.map((row) => {
              const rowItem = this.getTreeItem(row);
              return { label: String(rowItem.label), description: String(rowItem.description ?? '') };
            }),
          };
        }),
      ),
      namespaces: await Promise.all(
        namespaces.map(async (namespace) => ({
          namespace: namespace.namespace,
          count: namespace.count,
          entries: (await this.client.request('listMemory', { namespace: namespace.namespace })).map((entry) => ({
            key: entry.key,
            description: String(entryItem(entry).description),
            channel: entry.channel,
            revision: entry.revision,
          })),
        })),
      ),
    };
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}

/** A thread's row, in the Memory view and in the Runs view's Threads group. */
export function threadItem(thread: Thread): vscode.TreeItem {
  const item = new vscode.TreeItem(thread.title, vscode.TreeItemCollapsibleState.Collapsed);
  item.id = `thread:${thread.id}`;
  item.description = `${thread.id} · ${thread.runCount} run${thread.runCount === 1 ? '' : 's'}`;
  item.iconPath = new vscode.ThemeIcon('comment-discussion');
  item.contextValue = 'thread';
  const tooltip = new vscode.MarkdownString();
  tooltip.appendMarkdown(`Thread \`${thread.id}\` with **${thread.agent}**, started ${new Date(thread.createdAt).toLocaleString()}, last run ${new Date(thread.updatedAt).toLocaleString()}.\n\n`);
  if (thread.summary) tooltip.appendMarkdown(`Its first ${thread.summary.coveredRuns} runs reach the model as a summary.\n\n`);
  tooltip.appendMarkdown('Continue it with **Continue Thread…** on its row, or in a terminal:\n\n');
  tooltip.appendCodeblock(`keel run <agent file> --thread ${thread.id} --input "..."`, 'sh');
  item.tooltip = tooltip;
  return item;
}

function turnItem(run: Run, role: 'user' | 'agent'): vscode.TreeItem {
  if (role === 'user') {
    const item = new vscode.TreeItem(`You: ${truncate(run.input, 80)}`);
    item.iconPath = new vscode.ThemeIcon('account');
    item.tooltip = run.input;
    item.description = '';
    return item;
  }
  const answered = run.state === 'completed';
  const item = new vscode.TreeItem(`${run.agent}: ${answered ? truncate(run.result ?? '', 80) : `(${run.state})`}`);
  item.iconPath = new vscode.ThemeIcon(answered ? 'sparkle' : 'circle-slash');
  item.description = answered ? '' : 'not part of the history';
  item.tooltip = answered ? (run.result ?? '') : (run.error ?? run.state);
  item.command = { command: 'keel.showRun', title: 'Show Run', arguments: [run.id] };
  return item;
}

function entryItem(entry: MemoryItem): vscode.TreeItem {
  const item = new vscode.TreeItem(entry.key);
  item.id = `entry:${entry.namespace}/${entry.key}`;
  const value = typeof entry.value === 'string' ? entry.value : (JSON.stringify(entry.value) ?? '');
  item.description = `${truncate(value, 60)} · ${entry.channel}`;
  item.iconPath =
    entry.channel === 'user' ? new vscode.ThemeIcon('symbol-key') : new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
  const tooltip = new vscode.MarkdownString();
  tooltip.appendMarkdown(`**${entry.namespace}/${entry.key}** · ${entry.channel}${entry.channel === 'user' ? '' : ' (untrusted: recalled fenced, as data)'} · revision ${entry.revision}\n\n`);
  tooltip.appendMarkdown(`Written by \`${entry.writtenBy}\` at ${new Date(entry.updatedAt).toLocaleString()}\n\n`);
  tooltip.appendCodeblock(JSON.stringify(entry.value, null, 2) ?? '', 'json');
  item.tooltip = tooltip;
  item.contextValue = 'memory.entry';
  item.command = { command: 'keel.editMemory', title: 'Edit', arguments: [{ kind: 'entry', item: entry }] };
  return item;
}
