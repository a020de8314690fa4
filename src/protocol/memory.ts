import type { MemoryItem, NamespaceSummary, Run, Thread } from './records';

/**
 * What the extension asks the runtime process about threads and long-term memory. Writes come
 * from a person in the editor: they are recorded as `vscode:<user>`, never as an agent's.
 */
export interface MemoryRequests {
  /** Most recently used first. */
  listThreads: { params: { limit?: number }; result: Thread[] };
  /** A thread and its runs, in the order they ended. */
  getThread: { params: { threadId: string }; result: { thread: Thread; runs: Run[] } };
  /** Deletes a thread; its runs stay, as runs of no thread. */
  deleteThread: { params: { threadId: string }; result: { deleted: boolean; detachedRuns: number } };
  /** Makes a run started alone the first turn of a thread (Continue Thread… on it). */
  attachThread: { params: { runId: string; threadId: string }; result: Thread };
  listMemoryNamespaces: { params: Record<string, never>; result: NamespaceSummary[] };
  listMemory: { params: { namespace: string }; result: MemoryItem[] };
  getMemory: { params: { namespace: string; key: string }; result: MemoryItem | null };
  /**
   * A value a person saved in the editor. It keeps the channel it had (editing untrusted content
   * does not make it trusted); a new value is `user`. Refused when the value changed since
   * `expectedRevision` (null: it must not exist yet).
   */
  putMemory: { params: { namespace: string; key: string; value: unknown; expectedRevision: number | null }; result: MemoryItem };
  deleteMemory: { params: { namespace: string; key: string }; result: { deleted: boolean } };
}
