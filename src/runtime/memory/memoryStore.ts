import { StoreError } from '../errors';
import type { ContentChannel } from './channel';

/**
 * Long-term memory as the store keeps it: values under a namespace and a key (`user:ada`/`diet`,
 * `project`/`deploy-notes`), each with the channel its content came from, and the journal of every
 * memory operation a run made, so that a resumed or replayed run reads back what it saw.
 */

/** One stored value. */
export interface MemoryItem {
  readonly namespace: string;
  readonly key: string;
  /** Any JSON value: a string, a document. */
  readonly value: unknown;
  /** Where the content came from; recalled untrusted content is fenced, never passed on as trusted. */
  readonly channel: ContentChannel;
  /** The format of the row as read (rows of older formats are upgraded as they are read). */
  readonly schema: number;
  /** 1 for the first write, one more for each write after. */
  readonly revision: number;
  /** Who wrote the current value: `run:<runId>:<seq>`, `cli:<user>` or `vscode:<user>`. */
  readonly writtenBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface MemoryWrite {
  readonly namespace: string;
  readonly key: string;
  readonly value: unknown;
  /** The text keyword search matches (and embeddings are made of). */
  readonly text: string;
  readonly channel: ContentChannel;
  readonly writtenBy: string;
  readonly at: number;
  /** A vector of `text` from the embedder named, when the writer has one. */
  readonly embedding?: { readonly embedder: string; readonly vector: readonly number[] };
  /** Write only if the stored value is at this revision now (null: only if there is none). */
  readonly expectedRevision?: number | null;
}

export interface MemoryHit {
  readonly item: MemoryItem;
  /** Higher is better: BM25 relevance for keyword search, cosine similarity for semantic search. */
  readonly score: number;
}

export interface NamespaceSummary {
  readonly namespace: string;
  readonly count: number;
  readonly updatedAt: number;
}

/**
 * What a run did to memory, in the order it did it: reads and writes by tools (`get`, `put`,
 * `delete`, `search`, `list`), and what the run loaded before its first step (`thread.load`,
 * `progress.get`) at seq 0. Tool steps write `progress.update` through update_progress.
 */
export type MemoryOpKind = 'get' | 'put' | 'delete' | 'search' | 'list' | 'thread.load' | 'progress.get' | 'progress.update';

/** A memory operation of a run, with its result: keyed by (runId, seq, opIndex) like a tool call's step. */
export interface MemoryOpRecord {
  readonly runId: string;
  /** The step that made it; 0 for what the run loaded before its first step. */
  readonly seq: number;
  /** Its position among the operations of that step (of each attempt: a retry starts again at 0). */
  readonly opIndex: number;
  /** The record's format. */
  readonly schema: number;
  readonly op: MemoryOpKind;
  readonly namespace: string | null;
  readonly key: string | null;
  readonly request: unknown;
  readonly result: unknown;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** An operation to record; a write's result is filled in by the store, in the write's own transaction. */
export type NewMemoryOp = Omit<MemoryOpRecord, 'schema' | 'result' | 'endedAt'>;

export interface MemoryStore {
  get(namespace: string, key: string): Promise<MemoryItem | undefined>;
  /** A namespace's values, by key. */
  list(namespace: string, options?: { limit?: number }): Promise<MemoryItem[]>;
  /** Every namespace that holds values, by name. */
  namespaces(): Promise<NamespaceSummary[]>;
  /** Writes a value; with `op`, records that operation (its result: the item as written) in the same transaction. */
  put(write: MemoryWrite, op?: NewMemoryOp): Promise<MemoryItem>;
  /** Deletes a value; with `op`, records the operation (its result: `{ deleted }`) in the same transaction. */
  delete(namespace: string, key: string, op?: NewMemoryOp, at?: number): Promise<boolean>;
  /** Keyword search over the namespaces' keys and texts, best first. */
  search(namespaces: readonly string[], query: string, limit: number): Promise<MemoryHit[]>;
  /** The namespaces' values with their text and the vector stored for `embedder` (null where there is none). */
  vectors(namespaces: readonly string[], embedder: string): Promise<{ item: MemoryItem; text: string; vector: readonly number[] | null }[]>;
  /** Stores a vector for a value, if it is still at `revision`. */
  setVector(namespace: string, key: string, revision: number, embedder: string, vector: readonly number[]): Promise<void>;
  /** Records a read (or anything that writes nothing) with the result the run saw. */
  recordOp(op: NewMemoryOp, result: unknown, endedAt: number): Promise<MemoryOpRecord>;
  /** A run's memory operations, in order. */
  ops(runId: string): Promise<MemoryOpRecord[]>;
}

/** The format of memory operation records. */
export const MEMORY_OP_SCHEMA = 1;

/** A stored value's content in some format, as the upgrades see it. */
export interface VersionedValue {
  readonly schema: number;
  readonly value: unknown;
  readonly channel: ContentChannel;
}

/**
 * Upgrades of stored values: the one at index i turns a value of format i + 1 into format i + 2.
 * Append one when the format changes; rows are upgraded as they are read and written back in the
 * new format at their next write, so old rows are never misread.
 */
export type MemoryRowUpgrade = (row: VersionedValue) => VersionedValue;
export const MEMORY_ROW_UPGRADES: readonly MemoryRowUpgrade[] = [];

export function latestMemorySchema(upgrades: readonly MemoryRowUpgrade[] = MEMORY_ROW_UPGRADES): number {
  return upgrades.length + 1;
}

/** A stored value in the latest format; throws for a format this Keel does not know (written by a newer Keel). */
export function upgradeMemoryValue(row: VersionedValue, where: string, upgrades: readonly MemoryRowUpgrade[] = MEMORY_ROW_UPGRADES): VersionedValue {
  const latest = latestMemorySchema(upgrades);
  if (!Number.isInteger(row.schema) || row.schema < 1 || row.schema > latest) {
    throw new StoreError(
      `${where} is stored in memory format ${row.schema}, which this Keel cannot read (it knows formats 1 to ${latest}). ` +
        'Upgrade keel-agents to read it; it has not been changed.',
    );
  }
  let current = row;
  for (const upgrade of upgrades.slice(row.schema - 1)) current = { ...upgrade(current), schema: current.schema + 1 };
  return current;
}

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,127}$/;
const MAX_KEY = 512;

/** Throws unless `namespace` is 1-128 letters, digits and `_ . : @ / + -`, starting with a letter or digit. */
export function checkNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new StoreError(
      `A memory namespace is 1-128 letters, digits and _ . : @ / + -, starting with a letter or digit, such as "user:ada" or "project" (got ${JSON.stringify(namespace)}).`,
    );
  }
  return namespace;
}

export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || key.trim() !== key) {
    throw new StoreError(`A memory key is a non-empty string of at most ${MAX_KEY} characters without surrounding spaces (got ${JSON.stringify(key)}).`);
  }
  return key;
}

/** The text keyword search matches for a value: a string as it is; of a document, every string and number in it. */
export function searchableText(value: unknown): string {
  if (typeof value === 'string') return value;
  const parts: string[] = [];
  const walk = (item: unknown): void => {
    if (typeof item === 'string') parts.push(item);
    else if (typeof item === 'number' || typeof item === 'boolean') parts.push(String(item));
    else if (Array.isArray(item)) item.forEach(walk);
    else if (item && typeof item === 'object') {
      for (const [key, inner] of Object.entries(item)) {
        parts.push(key);
        walk(inner);
      }
    }
  };
  walk(value);
  return parts.join(' ');
}
