import type { Model } from '../model/model';
import type { ContentChannel } from './channel';
import type { MemoryHit, MemoryItem } from './memoryStore';

/** What agents and tools see of memory, threads and progress notes; the runtime implements them. */

/**
 * Turns texts into vectors for semantic search. Bring your own: an embeddings endpoint, a local
 * model. Vectors of different embedders are never compared, so name each one after its model.
 */
export interface Embedder {
  /** The model, such as `openai:text-embedding-3-small`: stored with each vector. */
  readonly name: string;
  /** One vector per text, in order, all of the same length. */
  embed(texts: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<number[][]>;
}

export interface MemoryPutOptions {
  /** The text search matches; by default the value itself (a document's strings and numbers). */
  readonly text?: string;
  /**
   * Where the content came from. By default `tool_output`: a tool writes what tools produce. Name
   * `user` only for content a person gave (such as the run's input).
   */
  readonly channel?: ContentChannel;
}

export interface MemorySearchOptions {
  /** At most this many hits (default 5). */
  readonly limit?: number;
  /** `semantic` (cosine similarity of embeddings; needs an embedder) or `keyword`. Default: semantic when the agent has an embedder. */
  readonly mode?: 'keyword' | 'semantic';
}

/**
 * Long-term memory, inside a tool (`ctx.memory`). Every call is journaled with its result under
 * the step, so when the step runs again (a retry, a resume, a replay) each call returns what it
 * returned the first time, and a write is not made twice.
 */
export interface Memory {
  get(namespace: string, key: string): Promise<MemoryItem | undefined>;
  put(namespace: string, key: string, value: unknown, options?: MemoryPutOptions): Promise<MemoryItem>;
  search(namespaces: string | readonly string[], query: string, options?: MemorySearchOptions): Promise<MemoryHit[]>;
  /** Whether there was a value to delete. */
  delete(namespace: string, key: string): Promise<boolean>;
  /** A namespace's values, by key. */
  list(namespace: string): Promise<MemoryItem[]>;
}

/** Where a multi-session task stands: what is done, under way, next, and still open. */
export interface ProgressRecord {
  readonly done: readonly string[];
  readonly inProgress: readonly string[];
  readonly next: readonly string[];
  readonly openQuestions: readonly string[];
}

/** A change to progress notes: each list given replaces the one kept; the others stay. */
export type ProgressUpdate = Partial<ProgressRecord>;

/** The progress notes of the run's task (`keel run --task <id>`), inside a tool (`ctx.progress`). */
export interface Progress {
  /** The task, or null when the run has none (then `update` throws). */
  readonly taskId: string | null;
  get(): Promise<ProgressRecord | undefined>;
  update(change: ProgressUpdate, options?: { readonly channel?: ContentChannel }): Promise<ProgressRecord>;
}

/** An agent's memory settings (`defineAgent({ memory })`). */
export interface MemoryConfig {
  /**
   * The namespaces the agent may use, such as `['user:ada', 'project']`; `prefix:*` allows every
   * namespace that starts with `prefix:`. Without it, tools may use any namespace.
   */
  readonly namespaces?: readonly string[];
  /** Offer the model memory_search, memory_get, memory_put and memory_delete over those namespaces. */
  readonly tools?: boolean;
  /** For semantic search, and to embed each value as it is written. */
  readonly embedder?: Embedder;
}

export interface AgentMemory {
  readonly namespaces: readonly string[] | null;
  readonly tools: boolean;
  readonly embedder: Embedder | undefined;
}

/** How much of a thread a run starts from (`defineAgent({ thread })`). */
export interface ThreadConfig {
  /** The most messages of earlier runs a run starts with (default 40). */
  readonly maxMessages?: number;
  /** The most tokens of earlier runs (and their summary) a run starts with, estimated as 4 characters a token (default 12000). */
  readonly maxTokens?: number;
  /** Bring earlier runs' tool calls and results too, not only their inputs and answers (default false). */
  readonly toolExchanges?: boolean;
  /** The model that summarizes older turns; by default the run's model. */
  readonly summaryModel?: Model | string;
}

export interface ThreadWindow {
  readonly maxMessages: number;
  readonly maxTokens: number;
  readonly toolExchanges: boolean;
  readonly summaryModel: Model | string | undefined;
}

export const DEFAULT_THREAD_WINDOW: ThreadWindow = { maxMessages: 40, maxTokens: 12_000, toolExchanges: false, summaryModel: undefined };

/** The namespace that keeps a task's progress notes, under the key `progress`. */
export function taskNamespace(taskId: string): string {
  return `task:${taskId}`;
}

export const PROGRESS_KEY = 'progress';

/** Whether `namespace` is one of `allowed` (`prefix:*` allows every namespace that starts with `prefix:`). */
export function namespaceAllowed(namespace: string, allowed: readonly string[] | null): boolean {
  if (allowed === null) return true;
  return allowed.some((pattern) => (pattern.endsWith('*') ? namespace.startsWith(pattern.slice(0, -1)) : namespace === pattern));
}
