import { StoreError } from '../errors';
import type { ContentChannel } from '../memory/channel';

/**
 * Threads as the store keeps them: a conversation that goes on across runs. The runs of a thread
 * carry its id (`RunRecord.threadId`); the thread itself records whose it is and the latest
 * summary of its older turns.
 */

/** What a summary step made of a thread's older turns. */
export interface ThreadSummary {
  readonly text: string;
  /** The least trusted channel of what it summarizes. */
  readonly channel: ContentChannel;
  /** The last run whose turns it covers. */
  readonly throughRunId: string;
  /** How many runs it covers, from the first: a later summary covers more. */
  readonly coveredRuns: number;
  /** The run and step (a model call of that run's journal) that wrote it. */
  readonly runId: string;
  readonly seq: number;
  readonly at: number;
}

export interface ThreadRecord {
  readonly id: string;
  /** The agent whose conversation it is. */
  readonly agent: string;
  /** The input of its first run, shortened. */
  readonly title: string;
  readonly createdAt: number;
  /** When a run last started in it. */
  readonly updatedAt: number;
  readonly runCount: number;
  readonly summary: ThreadSummary | null;
}

export interface ThreadStore {
  /** Creates the thread unless it exists; returns it as it is now. */
  ensure(thread: { id: string; agent: string; title: string; at: number }): Promise<ThreadRecord>;
  get(id: string): Promise<ThreadRecord | undefined>;
  /** Most recently used first. */
  list(options?: { limit?: number }): Promise<ThreadRecord[]>;
  /** Makes an existing run (one started without a thread) the first turn of a thread, creating the thread. */
  attachRun(runId: string, threadId: string, at: number): Promise<ThreadRecord>;
  /** Keeps a newer summary (one covering more runs than the thread's); an older one changes nothing. */
  setSummary(threadId: string, summary: ThreadSummary): Promise<void>;
  /** Deletes the thread; its runs stay, as runs of no thread. */
  delete(id: string): Promise<{ deleted: boolean; detachedRuns: number }>;
}

const THREAD_ID = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$/;

/** Throws unless `id` is 1-128 letters, digits and `_ . : @ + -`, starting with a letter or digit. */
export function checkThreadId(id: unknown, what = 'thread'): string {
  if (typeof id !== 'string' || !THREAD_ID.test(id)) {
    throw new StoreError(`A ${what} id is 1-128 letters, digits and _ . : @ + -, starting with a letter or digit (got ${JSON.stringify(id)}).`);
  }
  return id;
}
