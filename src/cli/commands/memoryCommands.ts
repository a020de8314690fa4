import { currentUser } from '../../runtime/currentUser';
import { KeelError } from '../../runtime/errors';
import { isContentChannel, type ContentChannel } from '../../runtime/memory/channel';
import { PROGRESS_KEY, taskNamespace } from '../../runtime/memory/memory';
import { keepsMemory, memoryStoreOf, type MemoryCapableStore } from '../../runtime/memory/memoryCapable';
import { checkKey, checkNamespace, searchableText, type MemoryItem, type MemoryOpRecord } from '../../runtime/memory/memoryStore';
import type { CheckpointStore, RunRecord } from '../../runtime/store/checkpointStore';
import { itemDetail, itemLine, memoryOpLines, namespacesTable, progressDetail, threadDetail, threadsTable } from '../memoryRender';
import { UsageError, type Command } from '../command';
import { out, parse, style, withStore } from '../shared';

/** Commands for threads and long-term memory: list, show, edit and delete what agents remember. */

function withMemory<T>(db: string | undefined, use: (store: MemoryCapableStore) => Promise<T>): Promise<T> {
  return withStore(db, (store) => use(memoryStoreOf(store, 'This command')));
}

function print(value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function threads(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, limit: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('keel threads takes no arguments.');
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
  return withMemory(values.db, async (store) => {
    const list = await store.threads.list({ limit });
    if (values.json) print(list);
    else out.write(`${threadsTable(list, style)}\n`);
    return 0;
  });
}

async function thread(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [action, id, ...extra] = positionals;
  if ((action !== 'show' && action !== 'delete') || !id || extra.length > 0) {
    throw new UsageError('keel thread takes an action and a thread id: keel thread show <threadId> | keel thread delete <threadId>');
  }
  return withMemory(values.db, async (store) => {
    const found = await store.threads.get(id);
    if (!found) throw new KeelError(`There is no thread ${id} in ${store.location}.`);
    if (action === 'show') {
      const runs = await store.threadRuns(id);
      if (values.json) print({ thread: found, runs });
      else out.write(`${threadDetail(found, runs, style)}\n`);
      return 0;
    }
    const { detachedRuns } = await store.threads.delete(id);
    out.write(`Deleted thread ${id}; its ${detachedRuns} run${detachedRuns === 1 ? '' : 's'} stay${detachedRuns === 1 ? 's' : ''} in the database as runs of no thread.\n`);
    return 0;
  });
}

const MEMORY_USAGE = [
  'keel memory [--json]                                   the namespaces',
  'keel memory ls <namespace> [--json]',
  'keel memory get <namespace> <key> [--json]',
  "keel memory put <namespace> <key> ('<JSON>' | --text <text>) [--channel user|document|tool_output]",
  'keel memory delete <namespace> <key>',
  'keel memory search <namespace>[,<namespace>...] <query> [--limit <n>] [--json]',
];

async function memory(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    text: { type: 'string' },
    channel: { type: 'string' },
    limit: { type: 'string' },
  });
  const [action, ...rest] = positionals;
  const json = values.json === true;
  const needs = (count: number, usage: string) => {
    if (rest.length !== count) throw new UsageError(`keel memory ${action ?? ''} takes ${usage}.`);
  };
  return withMemory(values.db, async (store) => {
    switch (action) {
      case undefined: {
        const namespaces = await store.memory.namespaces();
        if (json) print(namespaces);
        else out.write(`${namespacesTable(namespaces, style)}\n`);
        return 0;
      }
      case 'ls': {
        needs(1, 'a namespace');
        const items = await store.memory.list(checkNamespace(rest[0]));
        if (json) print(items);
        else out.write(`${items.length === 0 ? `Nothing is stored in ${rest[0] ?? ''}.` : items.map((item) => itemLine(item, style)).join('\n')}\n`);
        return 0;
      }
      case 'get': {
        needs(2, 'a namespace and a key');
        const [namespace = '', key = ''] = rest;
        const item = await store.memory.get(checkNamespace(namespace), checkKey(key));
        if (!item) throw new KeelError(`Nothing is stored under ${namespace}/${key}.`);
        if (json) print(item);
        else out.write(`${itemDetail(item, style)}\n`);
        return 0;
      }
      case 'put': {
        const [namespace = '', key = '', raw] = rest;
        if (rest.length !== (values.text === undefined ? 3 : 2)) {
          throw new UsageError("keel memory put takes a namespace, a key and a value: '<JSON>', or --text <text> for plain text.");
        }
        const value = values.text ?? parseJson(raw ?? '');
        const current = await store.memory.get(checkNamespace(namespace), checkKey(key));
        const channel = channelOption(values.channel) ?? current?.channel ?? 'user';
        const item = await store.memory.put({
          namespace,
          key,
          value,
          text: searchableText(value),
          channel,
          writtenBy: `cli:${currentUser()}`,
          at: Date.now(),
          expectedRevision: current?.revision ?? null,
        });
        out.write(`Saved ${item.namespace}/${item.key} (revision ${item.revision}, ${item.channel}).\n`);
        return 0;
      }
      case 'delete': {
        needs(2, 'a namespace and a key');
        const [namespace = '', key = ''] = rest;
        const deleted = await store.memory.delete(checkNamespace(namespace), checkKey(key));
        if (!deleted) throw new KeelError(`Nothing is stored under ${namespace}/${key}.`);
        out.write(`Deleted ${namespace}/${key}.\n`);
        return 0;
      }
      case 'search': {
        needs(2, 'namespaces (separated by commas) and a query');
        const [namespaces = '', query = ''] = rest;
        const limit = values.limit === undefined ? 10 : Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
        const hits = await store.memory.search(namespaces.split(',').map(checkNamespace), query, limit);
        if (json) print(hits);
        else out.write(`${hits.length === 0 ? 'No matches.' : hits.map((hit) => `${style.dim(hit.score.toFixed(2))} ${hit.item.namespace}  ${itemLine(hit.item, style)}`).join('\n')}\n`);
        return 0;
      }
      default:
        throw new UsageError(`keel memory has no action "${action}"; it takes ls, get, put, delete or search.`);
    }
  });
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new UsageError(`The value is not JSON (${JSON.stringify(raw.slice(0, 40))}); quote a string as '"text"', or use --text <text>.`);
  }
}

function channelOption(value: string | undefined): ContentChannel | undefined {
  if (value === undefined) return undefined;
  if (!isContentChannel(value)) throw new UsageError(`--channel is user, document or tool_output (got "${value}").`);
  return value;
}

export const memoryCommands: Readonly<Record<string, Command>> = {
  threads: { usage: ['keel threads [--limit <n>] [--json]'], run: threads },
  thread: { usage: ['keel thread show <threadId> [--json]', 'keel thread delete <threadId>'], run: thread },
  memory: { usage: MEMORY_USAGE, run: memory },
};

/** What `keel show` adds for a run: its thread and task, its memory operations, and the task's progress notes as they stand. */
export async function runMemorySection(
  store: CheckpointStore,
  run: RunRecord,
): Promise<{ text: string; json: { memoryOps: MemoryOpRecord[]; progress: MemoryItem | null } }> {
  if (!keepsMemory(store)) return { text: '', json: { memoryOps: [], progress: null } };
  const memoryOps = await store.memory.ops(run.id);
  const taskId = run.taskId ?? null;
  const progress = taskId === null ? undefined : await store.memory.get(taskNamespace(taskId), PROGRESS_KEY);
  const lines: string[] = [];
  if (run.threadId) lines.push(`${style.dim('thread')} ${run.threadId}`);
  if (taskId !== null) lines.push(`${style.dim('task  ')} ${taskId}`);
  if (memoryOps.length > 0) lines.push(style.bold('Memory'), ...memoryOpLines(memoryOps, style));
  if (taskId !== null) lines.push(progressDetail(taskId, progress, style));
  return { text: lines.join('\n'), json: { memoryOps, progress: progress ?? null } };
}
