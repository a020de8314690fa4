import { StoreError } from '../errors';
import type { CheckpointStore, RunRecord } from '../store/checkpointStore';
import type { ThreadStore } from '../threads/threadStore';
import type { MemoryStore } from './memoryStore';

/**
 * A store that keeps threads and long-term memory besides runs: SQLite does (migration 6). A
 * store without them still runs agents; runs with a thread or a task, and memory operations, are
 * refused there with a sentence saying so.
 */
export interface MemoryCapableStore extends CheckpointStore {
  /** Long-term memory and the journal of every memory operation of every run. */
  readonly memory: MemoryStore;
  readonly threads: ThreadStore;
  /** The runs of a thread, in the order they ended (those still going last, by start). */
  threadRuns(threadId: string): Promise<RunRecord[]>;
}

export function keepsMemory(store: CheckpointStore): store is MemoryCapableStore {
  const candidate = store as Partial<MemoryCapableStore>;
  return typeof candidate.memory === 'object' && typeof candidate.threads === 'object' && typeof candidate.threadRuns === 'function';
}

/** The store as one that keeps threads and memory, or a StoreError saying it does not (`what` needs them). */
export function memoryStoreOf(store: CheckpointStore, what: string): MemoryCapableStore {
  if (keepsMemory(store)) return store;
  throw new StoreError(`${what} needs threads and memory, which the run database at ${store.location} does not keep yet; use an SQLite database for it.`);
}
