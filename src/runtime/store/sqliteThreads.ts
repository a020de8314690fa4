import type Database from 'better-sqlite3';
import { StoreError } from '../errors';
import type { ThreadRecord, ThreadStore, ThreadSummary } from '../threads/threadStore';
import { checkThreadAgent, threadOf, threadTitle, type ThreadRow } from './threadRows';

const SELECT = 'SELECT t.*, (SELECT count(*) FROM runs r WHERE r.thread_id = t.id) AS run_count FROM threads t';

/** Threads in the run database (migration 6). */
export class SqliteThreadStore implements ThreadStore {
  private readonly statements;
  private readonly ensureThread;
  private readonly attach;
  private readonly remove;

  constructor(db: Database.Database) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO threads (id, agent, title, created_at, updated_at) VALUES (@id, @agent, @title, @at, @at)
         ON CONFLICT (id) DO UPDATE SET updated_at = max(updated_at, excluded.updated_at)`,
      ),
      get: db.prepare(`${SELECT} WHERE t.id = ?`),
      list: db.prepare(`${SELECT} ORDER BY t.updated_at DESC, t.id LIMIT ?`),
      run: db.prepare('SELECT agent, input, thread_id FROM runs WHERE id = ?'),
      setRunThread: db.prepare('UPDATE runs SET thread_id = ? WHERE id = ?'),
      setSummary: db.prepare(
        `UPDATE threads SET summary = @summary
         WHERE id = @id AND (summary IS NULL OR json_extract(summary, '$.coveredRuns') < @coveredRuns)`,
      ),
      detach: db.prepare('UPDATE runs SET thread_id = NULL WHERE thread_id = ?'),
      remove: db.prepare('DELETE FROM threads WHERE id = ?'),
    };
    this.ensureThread = db.transaction((thread: { id: string; agent: string; title: string; at: number }): ThreadRecord => {
      const existing = this.statements.get.get(thread.id) as ThreadRow | undefined;
      if (existing) checkThreadAgent(thread.id, existing.agent, thread.agent);
      this.statements.insert.run(thread);
      return threadOf(this.statements.get.get(thread.id) as ThreadRow);
    });
    this.attach = db.transaction((runId: string, threadId: string, at: number): ThreadRecord => {
      const run = this.statements.run.get(runId) as { agent: string; input: string; thread_id: string | null } | undefined;
      if (!run) throw new StoreError(`There is no run ${runId}.`);
      if (run.thread_id !== null && run.thread_id !== threadId) throw new StoreError(`Run ${runId} is already in thread ${run.thread_id}.`);
      const thread = this.ensureThread({ id: threadId, agent: run.agent, title: threadTitle(run.input), at });
      this.statements.setRunThread.run(threadId, runId);
      return { ...thread, runCount: run.thread_id === null ? thread.runCount + 1 : thread.runCount };
    });
    this.remove = db.transaction((id: string) => {
      const detachedRuns = this.statements.detach.run(id).changes;
      const deleted = this.statements.remove.run(id).changes > 0;
      return { deleted, detachedRuns };
    });
  }

  async ensure(thread: { id: string; agent: string; title: string; at: number }): Promise<ThreadRecord> {
    return this.ensureThread.immediate({ ...thread, title: threadTitle(thread.title) });
  }

  async get(id: string): Promise<ThreadRecord | undefined> {
    const row = this.statements.get.get(id) as ThreadRow | undefined;
    return row && threadOf(row);
  }

  async list(options: { limit?: number } = {}): Promise<ThreadRecord[]> {
    return (this.statements.list.all(options.limit ?? 100) as ThreadRow[]).map(threadOf);
  }

  async attachRun(runId: string, threadId: string, at: number): Promise<ThreadRecord> {
    return this.attach.immediate(runId, threadId, at);
  }

  async setSummary(threadId: string, summary: ThreadSummary): Promise<void> {
    this.statements.setSummary.run({ id: threadId, summary: JSON.stringify(summary), coveredRuns: summary.coveredRuns });
  }

  async delete(id: string): Promise<{ deleted: boolean; detachedRuns: number }> {
    return this.remove.immediate(id);
  }
}
