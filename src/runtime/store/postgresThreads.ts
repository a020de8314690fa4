import { StoreError } from '../errors';
import type { ThreadRecord, ThreadStore, ThreadSummary } from '../threads/threadStore';
import { checkThreadAgent, threadOf, threadTitle, type ThreadRow } from './threadRows';
import type { Connection } from './postgresConnection';
import type { SqlSession } from './postgresMigrations';

const SELECT = 'SELECT t.*, (SELECT count(*) FROM runs r WHERE r.thread_id = t.id)::int AS run_count FROM threads t';

/** Threads in the PostgreSQL store (its second migration), as the SQLite store keeps them. */
export class PostgresThreadStore implements ThreadStore {
  constructor(private readonly connection: Connection) {}

  ensure(thread: { id: string; agent: string; title: string; at: number }): Promise<ThreadRecord> {
    return this.connection.transaction((db) => ensureThread(db, { ...thread, title: threadTitle(thread.title) }));
  }

  async get(id: string): Promise<ThreadRecord | undefined> {
    const [row] = await this.connection.query(`${SELECT} WHERE t.id = $1`, [id]);
    return row === undefined ? undefined : threadOf(row as ThreadRow);
  }

  async list(options: { limit?: number } = {}): Promise<ThreadRecord[]> {
    const rows = await this.connection.query(`${SELECT} ORDER BY t.updated_at DESC, t.id LIMIT $1`, [options.limit ?? 100]);
    return (rows as ThreadRow[]).map(threadOf);
  }

  attachRun(runId: string, threadId: string, at: number): Promise<ThreadRecord> {
    return this.connection.transaction(async (db) => {
      const [run] = (await db.query('SELECT agent, input, thread_id FROM runs WHERE id = $1 FOR UPDATE', [runId])).rows as {
        agent: string;
        input: string;
        thread_id: string | null;
      }[];
      if (!run) throw new StoreError(`There is no run ${runId}.`);
      if (run.thread_id !== null && run.thread_id !== threadId) throw new StoreError(`Run ${runId} is already in thread ${run.thread_id}.`);
      const thread = await ensureThread(db, { id: threadId, agent: run.agent, title: threadTitle(run.input), at });
      await db.query('UPDATE runs SET thread_id = $1 WHERE id = $2', [threadId, runId]);
      return { ...thread, runCount: run.thread_id === null ? thread.runCount + 1 : thread.runCount };
    });
  }

  async setSummary(threadId: string, summary: ThreadSummary): Promise<void> {
    await this.connection.query(
      `UPDATE threads SET summary = $2
       WHERE id = $1 AND (summary IS NULL OR (summary::json ->> 'coveredRuns')::numeric < $3)`,
      [threadId, JSON.stringify(summary), summary.coveredRuns],
    );
  }

  delete(id: string): Promise<{ deleted: boolean; detachedRuns: number }> {
    return this.connection.transaction(async (db) => {
      const detached = await db.query('UPDATE runs SET thread_id = NULL WHERE thread_id = $1 RETURNING id', [id]);
      const removed = await db.query('DELETE FROM threads WHERE id = $1 RETURNING id', [id]);
      return { deleted: removed.rows.length > 0, detachedRuns: detached.rows.length };
    });
  }
}

/**
 * Creates the thread, or marks it used now. The insert comes first, so that of two processes
 * creating one thread at once for different agents, the second sees the first's agent and fails.
 */
async function ensureThread(db: SqlSession, thread: { id: string; agent: string; title: string; at: number }): Promise<ThreadRecord> {
  const { rows } = await db.query(
    `INSERT INTO threads (id, agent, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
     ON CONFLICT (id) DO UPDATE SET updated_at = greatest(threads.updated_at, excluded.updated_at)
     RETURNING agent`,
    [thread.id, thread.agent, thread.title, thread.at],
  );
  checkThreadAgent(thread.id, (rows[0] as { agent: string }).agent, thread.agent);
  return threadOf((await db.query(`${SELECT} WHERE t.id = $1`, [thread.id])).rows[0] as ThreadRow);
}
