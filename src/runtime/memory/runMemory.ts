import type { Agent } from '../agent/define';
import { canonicalJson } from '../hash/canonicalJson';
import { NonRetryableError } from '../effects/retry';
import { KeelError } from '../errors';
import type { Message } from '../model/model';
import type { CheckpointStore, RunRecord } from '../store/checkpointStore';
import { readThread, contextMessage, threadMessages, type LoadedThread, type Summarize } from '../threads/threadContext';
import { isContentChannel, leastTrusted, type ContentChannel } from './channel';
import { keepsMemory, memoryStoreOf, type MemoryCapableStore } from './memoryCapable';
import {
  PROGRESS_KEY,
  namespaceAllowed,
  taskNamespace,
  type Embedder,
  type Memory,
  type MemoryPutOptions,
  type MemorySearchOptions,
  type Progress,
  type ProgressRecord,
  type ProgressUpdate,
} from './memory';
import {
  MEMORY_OP_SCHEMA,
  checkKey,
  checkNamespace,
  searchableText,
  type MemoryHit,
  type MemoryItem,
  type MemoryOpKind,
  type MemoryOpRecord,
  type NewMemoryOp,
} from './memoryStore';
import { applyProgress, progressOf, progressText } from './progress';
import { cosineSimilarity } from './search';

/** Keel's tools that read memory: their results carry the channels of what they read. */
export const MEMORY_READ_TOOLS: ReadonlySet<string> = new Set(['memory_get', 'memory_search']);
/** Keel's tools that only write: their results hold nothing from outside. */
export const MEMORY_WRITE_TOOLS: ReadonlySet<string> = new Set(['memory_put', 'memory_delete', 'update_progress']);

const DEFAULT_SEARCH_LIMIT = 5;

/**
 * The memory of one run: every operation journaled under (run, step, index) with its result, so
 * that when the loop runs again (a resume, a retry, a replay) each operation it makes returns the
 * recorded result and no write is made twice. Operations at step 0 are what the run loaded before
 * its first step: its thread and its task's progress notes.
 */
export class RunMemory {
  private readonly recorded = new Map<string, MemoryOpRecord>();
  /** The least trusted channel of what the run loaded before its first step. */
  private preludeChannel: ContentChannel = 'user';

  private constructor(
    private readonly store: CheckpointStore,
    private readonly run: RunRecord,
    private readonly agent: Agent,
    private readonly now: () => number,
    ops: readonly MemoryOpRecord[],
  ) {
    for (const op of ops) this.recorded.set(`${op.seq}:${op.opIndex}`, op);
  }

  static async open(store: CheckpointStore, run: RunRecord, agent: Agent, now: () => number): Promise<RunMemory> {
    return new RunMemory(store, run, agent, now, keepsMemory(store) ? await store.memory.ops(run.id) : []);
  }

  /** The store, which must keep memory for any memory operation. */
  private get kept(): MemoryCapableStore {
    return memoryStoreOf(this.store, 'Long-term memory');
  }

  /**
   * The messages the run starts with between its instructions and its input: its thread (earlier
   * turns, and their summary, made here when they went past the window) and its task's progress
   * notes. Untrusted parts come fenced.
   */
  async prelude(summarize: Summarize): Promise<Message[]> {
    let index = 0;
    const messages: Message[] = [];
    const channels: ContentChannel[] = [];
    // A run taken out of its thread since it started still starts from the thread it read.
    const loadedBefore = this.recorded.get('0:0');
    const threadId = this.run.threadId ?? (loadedBefore?.op === 'thread.load' ? String((loadedBefore.request as { threadId?: unknown }).threadId) : null);
    const taskId = this.run.taskId ?? null;
    if (threadId !== null) {
      const loaded = (await this.journaled(0, index++, 'thread.load', null, null, { threadId }, false, (entry) =>
        readThread(this.kept, this.run, threadId, this.agent.thread).then((result) => this.kept.memory.recordOp(entry, result, this.now())),
      )) as LoadedThread;
      const thread = await threadMessages(this.kept, this.run, loaded, this.agent.thread, summarize, this.now);
      messages.push(...thread.messages);
      channels.push(thread.channel);
    }
    if (taskId !== null) {
      const item = await this.progressGet(0, index++);
      if (item) {
        const when = new Date(item.updatedAt).toISOString();
        const text =
          `Progress notes of task ${taskId}, kept by earlier runs of it (last written ${when} by ${item.writtenBy}):\n` +
          `${progressText(progressOf(item.value))}\n` +
          'Pick up where they stop, and keep them current with update_progress.';
        messages.push(contextMessage(text, item.channel, `task ${taskId} progress notes`));
        channels.push(item.channel);
      }
    }
    this.preludeChannel = leastTrusted(...channels);
    return messages;
  }

  /**
   * Memory and progress notes for one attempt of a tool step: its operations are numbered from 0.
   * What the tool writes is in `channel` unless it names another: that of the tool's output.
   */
  forStep(seq: number, signal?: AbortSignal, channel: ContentChannel = 'tool_output'): StepMemory {
    return new StepMemory(this, seq, signal, channel);
  }

  /**
   * The least trusted channel of everything the model had read before step `seq`: what the run
   * loaded, and each tool result (Keel's memory reads count as the channels of what they read;
   * its writes add nothing). What the model writes at `seq` is no more trusted than that.
   */
  async conversationChannel(seq: number): Promise<ContentChannel> {
    const channels: ContentChannel[] = [this.preludeChannel];
    for (const step of await this.store.getSteps(this.run.id)) {
      if (step.seq >= seq || step.kind !== 'tool' || MEMORY_WRITE_TOOLS.has(step.name)) continue;
      if (!MEMORY_READ_TOOLS.has(step.name)) {
        channels.push('tool_output');
        continue;
      }
      for (const op of this.recorded.values()) if (op.seq === step.seq) channels.push(...channelsIn(op.result));
    }
    return leastTrusted(...channels);
  }

  get taskId(): string | null {
    return this.run.taskId ?? null;
  }

  async get(seq: number, index: number, namespace: string, key: string): Promise<MemoryItem | undefined> {
    this.allow(namespace);
    checkKey(key);
    const result = await this.journaled(seq, index, 'get', namespace, key, { namespace, key }, false, async (entry) =>
      this.kept.memory.recordOp(entry, (await this.kept.memory.get(namespace, key)) ?? null, this.now()),
    );
    return (result as MemoryItem | null) ?? undefined;
  }

  async list(seq: number, index: number, namespace: string): Promise<MemoryItem[]> {
    this.allow(namespace);
    const result = await this.journaled(seq, index, 'list', namespace, null, { namespace }, false, async (entry) =>
      this.kept.memory.recordOp(entry, await this.kept.memory.list(namespace), this.now()),
    );
    return result as MemoryItem[];
  }

  async put(
    seq: number,
    index: number,
    namespace: string,
    key: string,
    value: unknown,
    options: MemoryPutOptions & { channel: ContentChannel },
    signal?: AbortSignal,
  ): Promise<MemoryItem> {
    this.allow(namespace);
    checkKey(key);
    if (!isContentChannel(options.channel)) throw new KeelError(`A memory channel is user, document or tool_output (got ${JSON.stringify(options.channel)}).`);
    const json = toJson(value, `${namespace}/${key}`);
    const text = options.text ?? searchableText(json);
    const request = { namespace, key, value: json, channel: options.channel, ...(options.text === undefined ? {} : { text }) };
    const result = await this.journaled(seq, index, 'put', namespace, key, request, false, async (entry) => {
      const embedder = this.agent.memory?.embedder;
      const embedding = embedder ? { embedder: embedder.name, vector: await embedOne(embedder, text, signal) } : undefined;
      const at = this.now();
      const item = await this.kept.memory.put(
        { namespace, key, value: json, text, channel: options.channel, writtenBy: `run:${this.run.id}:${seq}`, at, ...(embedding ? { embedding } : {}) },
        entry,
      );
      return { ...entry, schema: MEMORY_OP_SCHEMA, result: item, endedAt: at };
    });
    return result as MemoryItem;
  }

  async delete(seq: number, index: number, namespace: string, key: string): Promise<boolean> {
    this.allow(namespace);
    checkKey(key);
    const result = await this.journaled(seq, index, 'delete', namespace, key, { namespace, key }, false, async (entry) => {
      const at = this.now();
      const deleted = await this.kept.memory.delete(namespace, key, entry, at);
      return { ...entry, schema: MEMORY_OP_SCHEMA, result: { deleted }, endedAt: at };
    });
    return (result as { deleted: boolean }).deleted;
  }

  async search(
    seq: number,
    index: number,
    namespaces: string | readonly string[],
    query: string,
    options: MemorySearchOptions = {},
    signal?: AbortSignal,
  ): Promise<MemoryHit[]> {
    const list = typeof namespaces === 'string' ? [namespaces] : [...namespaces];
    for (const namespace of list) this.allow(namespace);
    const limit = options.limit ?? DEFAULT_SEARCH_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new KeelError(`A memory search limit is a whole number of at least 1 (got ${String(limit)}).`);
    const embedder = this.agent.memory?.embedder;
    const mode = options.mode ?? (embedder ? 'semantic' : 'keyword');
    if (mode !== 'keyword' && mode !== 'semantic') throw new KeelError(`A memory search mode is keyword or semantic (got ${JSON.stringify(mode)}).`);
    const request = { namespaces: list, query, limit, mode };
    const result = await this.journaled(seq, index, 'search', list.length === 1 ? (list[0] ?? null) : null, null, request, true, async (entry) => {
      let hits: MemoryHit[];
      if (mode === 'keyword') {
        hits = await this.kept.memory.search(list, query, limit);
      } else {
        if (!embedder) throw new KeelError('Semantic memory search needs an embedder: defineAgent({ memory: { embedder } }).');
        hits = await this.semantic(list, query, limit, embedder, signal);
      }
      return this.kept.memory.recordOp(entry, hits, this.now());
    });
    return result as MemoryHit[];
  }

  async progressGet(seq: number, index: number): Promise<MemoryItem | undefined> {
    const namespace = this.progressNamespace();
    const result = await this.journaled(seq, index, 'progress.get', namespace, PROGRESS_KEY, {}, false, async (entry) =>
      this.kept.memory.recordOp(entry, (await this.kept.memory.get(namespace, PROGRESS_KEY)) ?? null, this.now()),
    );
    return (result as MemoryItem | null) ?? undefined;
  }

  async progressUpdate(seq: number, index: number, change: ProgressUpdate, channel: ContentChannel): Promise<MemoryItem> {
    const namespace = this.progressNamespace();
    const result = await this.journaled(seq, index, 'progress.update', namespace, PROGRESS_KEY, { change, channel }, false, async (entry) => {
      const current = await this.kept.memory.get(namespace, PROGRESS_KEY);
      const next = applyProgress(current, change, channel);
      const at = this.now();
      const item = await this.kept.memory.put(
        { namespace, key: PROGRESS_KEY, value: next.record, text: progressText(next.record), channel: next.channel, writtenBy: `run:${this.run.id}:${seq}`, at },
        entry,
      );
      return { ...entry, schema: MEMORY_OP_SCHEMA, result: item, endedAt: at };
    });
    return result as MemoryItem;
  }

  private progressNamespace(): string {
    if (this.run.taskId === undefined || this.run.taskId === null) throw new KeelError('This run has no task, so it keeps no progress notes: start it with a task (keel run --task <id>).');
    return taskNamespace(this.run.taskId);
  }

  private allow(namespace: string): void {
    checkNamespace(namespace);
    const allowed = this.agent.memory?.namespaces ?? null;
    if (!namespaceAllowed(namespace, allowed)) {
      throw new KeelError(`The agent ${this.agent.name} may not use the memory namespace "${namespace}"; its namespaces are ${(allowed ?? []).join(', ')}.`);
    }
  }

  /** Cosine similarity against every value of the namespaces, embedding (and storing) what has no vector yet. */
  private async semantic(
    namespaces: readonly string[],
    query: string,
    limit: number,
    embedder: Embedder,
    signal: AbortSignal | undefined,
  ): Promise<MemoryHit[]> {
    const rows = await this.kept.memory.vectors(namespaces, embedder.name);
    const missing = rows.filter((row) => row.vector === null);
    const made = missing.length > 0 ? await embedMany(embedder, missing.map((row) => row.text), signal) : [];
    const vectors = new Map<MemoryItem, readonly number[]>();
    for (const [position, row] of missing.entries()) {
      const vector = made[position] ?? [];
      vectors.set(row.item, vector);
      await this.kept.memory.setVector(row.item.namespace, row.item.key, row.item.revision, embedder.name, vector);
    }
    const queryVector = await embedOne(embedder, query, signal);
    return rows
      .map((row) => ({ item: row.item, score: cosineSimilarity(queryVector, row.vector ?? vectors.get(row.item) ?? []) }))
      .sort((a, b) => b.score - a.score || compareItems(a.item, b.item))
      .slice(0, limit);
  }

  /**
   * Runs a memory operation once: the first time it is performed and recorded with its result;
   * when the step runs again, the recorded result comes back. An operation other than the
   * recorded one at that position (another kind, namespace or key, or another search) means the
   * tool no longer does what it did, and fails the call.
   */
  private async journaled(
    seq: number,
    index: number,
    op: MemoryOpKind,
    namespace: string | null,
    key: string | null,
    request: unknown,
    requestMustMatch: boolean,
    perform: (entry: NewMemoryOp) => Promise<MemoryOpRecord>,
  ): Promise<unknown> {
    const id = `${seq}:${index}`;
    const recorded = this.recorded.get(id);
    if (recorded) {
      const same =
        recorded.op === op &&
        recorded.namespace === namespace &&
        recorded.key === key &&
        (!requestMustMatch || canonicalJson(recorded.request) === canonicalJson(request));
      if (!same) {
        throw new NonRetryableError(
          `Memory operation ${index + 1} of step ${seq} of run ${this.run.id} was ${describeOp(recorded.op, recorded.namespace, recorded.key)} when the run first got here, ` +
            `but is now ${describeOp(op, namespace, key)}: the tool no longer does what it did. Restore it, or start a new run.`,
        );
      }
      return recorded.result;
    }
    const record = await perform({ runId: this.run.id, seq, opIndex: index, op, namespace, key, request, startedAt: this.now() });
    this.recorded.set(id, record);
    return record.result;
  }
}

/** `ctx.memory` and `ctx.progress` of one attempt of a tool step. */
export class StepMemory implements Memory {
  private index = 0;
  readonly progress: Progress;

  constructor(
    private readonly memory: RunMemory,
    private readonly seq: number,
    private readonly signal: AbortSignal | undefined,
    private readonly channel: ContentChannel,
  ) {
    const next = () => this.index++;
    this.progress = {
      taskId: memory.taskId,
      get: async (): Promise<ProgressRecord | undefined> => {
        const item = await memory.progressGet(seq, next());
        return item && progressOf(item.value);
      },
      update: async (change: ProgressUpdate, options: { readonly channel?: ContentChannel } = {}): Promise<ProgressRecord> =>
        progressOf((await memory.progressUpdate(seq, next(), change, options.channel ?? channel)).value),
    };
  }

  get(namespace: string, key: string): Promise<MemoryItem | undefined> {
    return this.memory.get(this.seq, this.index++, namespace, key);
  }

  put(namespace: string, key: string, value: unknown, options: MemoryPutOptions = {}): Promise<MemoryItem> {
    return this.memory.put(this.seq, this.index++, namespace, key, value, { ...options, channel: options.channel ?? this.channel }, this.signal);
  }

  search(namespaces: string | readonly string[], query: string, options?: MemorySearchOptions): Promise<MemoryHit[]> {
    return this.memory.search(this.seq, this.index++, namespaces, query, options, this.signal);
  }

  delete(namespace: string, key: string): Promise<boolean> {
    return this.memory.delete(this.seq, this.index++, namespace, key);
  }

  list(namespace: string): Promise<MemoryItem[]> {
    return this.memory.list(this.seq, this.index++, namespace);
  }

  /** What the model may be trusted with as it writes at this step: see RunMemory.conversationChannel. */
  modelChannel(): Promise<ContentChannel> {
    return this.memory.conversationChannel(this.seq);
  }

  /** A progress update the model asked for, as trusted as what it had read. */
  async updateProgressFromModel(change: ProgressUpdate): Promise<MemoryItem> {
    const channel = await this.modelChannel();
    return this.memory.progressUpdate(this.seq, this.index++, change, channel);
  }
}

/** The channel of a tool's output: the one it declares (`document`, `tool_output`), else `tool_output`. */
export function outputChannelOf(tool: object): ContentChannel {
  return 'channel' in tool && isContentChannel(tool.channel) && tool.channel !== 'user' ? tool.channel : 'tool_output';
}

/**
 * `ctx.memory` and `ctx.progress` for a tool called outside a run (a benchmark, a test of the tool
 * alone): every operation fails, saying so.
 */
export function detachedMemory(): { memory: Memory; progress: Progress } {
  const refuse = (): Promise<never> => Promise.reject(new KeelError('This tool call is not part of a run, so it has no memory.'));
  return {
    memory: { get: refuse, put: refuse, search: refuse, delete: refuse, list: refuse },
    progress: { taskId: null, get: refuse, update: refuse },
  };
}

function describeOp(op: MemoryOpKind, namespace: string | null, key: string | null): string {
  return `${op}${namespace === null ? '' : ` ${namespace}${key === null ? '' : `/${key}`}`}`;
}

/** The channels of the values in a recorded result (an item, items, or search hits). */
function channelsIn(result: unknown): ContentChannel[] {
  const found: ContentChannel[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if ('namespace' in record && isContentChannel(record['channel'])) found.push(record['channel']);
      if ('item' in record) walk(record['item']);
    }
  };
  walk(result);
  return found;
}

function compareItems(a: MemoryItem, b: MemoryItem): number {
  return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The value as JSON stores it (what a later read gets back); throws for what JSON cannot hold. */
function toJson(value: unknown, where: string): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new KeelError(`The value for ${where} cannot be stored as JSON: ${error instanceof Error ? error.message : String(error)}.`);
  }
  if (text === undefined) throw new KeelError(`The value for ${where} cannot be stored as JSON (it is ${typeof value}).`);
  return JSON.parse(text) as unknown;
}

async function embedMany(embedder: Embedder, texts: readonly string[], signal: AbortSignal | undefined): Promise<number[][]> {
  const vectors = await embedder.embed(texts, signal ? { signal } : undefined);
  if (!Array.isArray(vectors) || vectors.length !== texts.length || vectors.some((vector) => !Array.isArray(vector) || vector.some((x) => typeof x !== 'number'))) {
    throw new KeelError(`The embedder ${embedder.name} did not return one vector of numbers for each of the ${texts.length} texts.`);
  }
  return vectors;
}

async function embedOne(embedder: Embedder, text: string, signal: AbortSignal | undefined): Promise<number[]> {
  return (await embedMany(embedder, [text], signal))[0] ?? [];
}
