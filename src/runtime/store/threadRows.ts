import { StoreError } from '../errors';
import type { ThreadRecord, ThreadSummary } from '../threads/threadStore';
import { int, type Int } from './storeRows';

/** A row of the `threads` table with its run count, as SQLite and PostgreSQL return it, and what both stores make of it. */
export interface ThreadRow {
  id: string;
  agent: string;
  title: string;
  summary: string | null;
  created_at: Int;
  updated_at: Int;
  run_count: number;
}

export function threadOf(row: ThreadRow): ThreadRecord {
  return {
    id: row.id,
    agent: row.agent,
    title: row.title,
    createdAt: int(row.created_at),
    updatedAt: int(row.updated_at),
    runCount: row.run_count,
    summary: row.summary === null ? null : (JSON.parse(row.summary) as ThreadSummary),
  };
}

/** A thread's title: its first input, on one line and short. */
export function threadTitle(input: string): string {
  const flat = input.replace(/\s+/g, ' ').trim();
  return flat.length <= 80 ? flat : `${flat.slice(0, 79)}…`;
}

/** Throws when a run of `agent` would join a thread that is a conversation with another agent. */
export function checkThreadAgent(threadId: string, threadAgent: string, agent: string): void {
  if (threadAgent !== agent) {
    throw new StoreError(`Thread ${threadId} is a conversation with the agent "${threadAgent}", not "${agent}"; start another thread.`);
  }
}
