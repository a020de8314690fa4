import { StoreError } from '../errors';
import type { ThreadRecord, ThreadSummary } from '../threads/threadStore';

/**
 * A row of the `threads` table with its run count, as SQLite and PostgreSQL return it, and what
 * both stores make of it. Times are numbers in SQLite and may be strings (BIGINT) in PostgreSQL.
 */
export interface ThreadRow {
  id: string;
  agent: string;
  title: string;
  summary: string | null;
  created_at: number | string;
  updated_at: number | string;
  run_count: number;
}

export function threadOf(row: ThreadRow): ThreadRecord {
  return {
    id: row.id,
    agent: row.agent,
    title: row.title,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
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
