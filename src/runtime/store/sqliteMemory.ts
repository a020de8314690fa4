import type Database from 'better-sqlite3';
import { StoreError } from '../errors';
import {
  MEMORY_OP_SCHEMA,
  MEMORY_ROW_UPGRADES,
  latestMemorySchema,
  type MemoryHit,
  type MemoryItem,
  type MemoryOpRecord,
  type MemoryRowUpgrade,
  type MemoryStore,
  type MemoryWrite,
  type NamespaceSummary,
  type NewMemoryOp,
} from '../memory/memoryStore';
import { keywordHits, memoryItem, memoryOp, memoryVectors, type MemoryOpRow, type MemoryRow } from './memoryRows';
import { encodeVector, ftsQuery, queryTokens } from '../memory/search';

/** Long-term memory and the memory journal in the run database (migration 6). */
export class SqliteMemoryStore implements MemoryStore {
  private readonly statements;
  private readonly fts: boolean;
  private readonly writeValue;
  private readonly removeValue;

  constructor(
    private readonly db: Database.Database,
    private readonly upgrades: readonly MemoryRowUpgrade[] = MEMORY_ROW_UPGRADES,
  ) {
    this.fts = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memory_fts'").get() !== undefined;
    this.statements = {
      get: db.prepare('SELECT * FROM memory WHERE namespace = ? AND key = ?'),
      list: db.prepare('SELECT * FROM memory WHERE namespace = ? ORDER BY key LIMIT ?'),
      inNamespaces: db.prepare('SELECT * FROM memory WHERE namespace IN (SELECT value FROM json_each(?)) ORDER BY namespace, key'),
      namespaces: db.prepare('SELECT namespace, count(*) AS count, max(updated_at) AS updated_at FROM memory GROUP BY namespace ORDER BY namespace'),
      upsert: db.prepare(
        `INSERT INTO memory (namespace, key, schema, value, text, channel, revision, written_by, embedder, embedding, created_at, updated_at)
         VALUES (@namespace, @key, @schema, @value, @text, @channel, 1, @writtenBy, @embedder, @embedding, @at, @at)
         ON CONFLICT (namespace, key) DO UPDATE SET schema = excluded.schema, value = excluded.value, text = excluded.text,
           channel = excluded.channel, revision = revision + 1, written_by = excluded.written_by, embedder = excluded.embedder,
           embedding = excluded.embedding, updated_at = excluded.updated_at`,
      ),
      remove: db.prepare('DELETE FROM memory WHERE namespace = ? AND key = ?'),
      setVector: db.prepare('UPDATE memory SET embedder = @embedder, embedding = @embedding WHERE namespace = @namespace AND key = @key AND revision = @revision'),
      insertOp: db.prepare(
        `INSERT INTO memory_ops (run_id, seq, op_index, schema, op, namespace, key, request, result, started_at, ended_at)
         VALUES (@runId, @seq, @opIndex, @schema, @op, @namespace, @key, @request, @result, @startedAt, @endedAt)`,
      ),
      ops: db.prepare('SELECT * FROM memory_ops WHERE run_id = ? ORDER BY seq, op_index'),
      fts: this.fts
        ? db.prepare(
            `SELECT m.*, bm25(memory_fts, 0.0, 2.0, 1.0) AS rank FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid
             WHERE memory_fts MATCH @match AND m.namespace IN (SELECT value FROM json_each(@namespaces))
             ORDER BY rank, m.namespace, m.key LIMIT @limit`,
          )
        : undefined,
    };
    this.writeValue = db.transaction((write: MemoryWrite, op: NewMemoryOp | undefined, endedAt: number): MemoryItem => {
      const current = this.statements.get.get(write.namespace, write.key) as MemoryRow | undefined;
      if (write.expectedRevision !== undefined && (current?.revision ?? null) !== write.expectedRevision) {
        throw new StoreError(
          current
            ? `${write.namespace}/${write.key} changed since it was read (it is at revision ${current.revision} now, not ${write.expectedRevision ?? 'new'}); read it again.`
            : `${write.namespace}/${write.key} was deleted since it was read.`,
        );
      }
      this.statements.upsert.run({
        namespace: write.namespace,
        key: write.key,
        schema: latestMemorySchema(this.upgrades),
        value: JSON.stringify(write.value) ?? 'null',
        text: write.text,
        channel: write.channel,
        writtenBy: write.writtenBy,
        embedder: write.embedding?.embedder ?? null,
        embedding: write.embedding ? encodeVector(write.embedding.vector) : null,
        at: write.at,
      });
      const item = memoryItem(this.statements.get.get(write.namespace, write.key) as MemoryRow, this.upgrades);
      if (op) this.insertOp(op, item, endedAt);
      return item;
    });
    this.removeValue = db.transaction((namespace: string, key: string, op: NewMemoryOp | undefined, endedAt: number): boolean => {
      const deleted = this.statements.remove.run(namespace, key).changes > 0;
      if (op) this.insertOp(op, { deleted }, endedAt);
      return deleted;
    });
  }

  async get(namespace: string, key: string): Promise<MemoryItem | undefined> {
    const row = this.statements.get.get(namespace, key) as MemoryRow | undefined;
    return row && memoryItem(row, this.upgrades);
  }

  async list(namespace: string, options: { limit?: number } = {}): Promise<MemoryItem[]> {
    const rows = this.statements.list.all(namespace, options.limit ?? 1000) as MemoryRow[];
    return rows.map((row) => memoryItem(row, this.upgrades));
  }

  async namespaces(): Promise<NamespaceSummary[]> {
    const rows = this.statements.namespaces.all() as { namespace: string; count: number; updated_at: number }[];
    return rows.map((row) => ({ namespace: row.namespace, count: row.count, updatedAt: row.updated_at }));
  }

  async put(write: MemoryWrite, op?: NewMemoryOp): Promise<MemoryItem> {
    return this.writeValue.immediate(write, op, write.at);
  }

  async delete(namespace: string, key: string, op?: NewMemoryOp, at = Date.now()): Promise<boolean> {
    return this.removeValue.immediate(namespace, key, op, at);
  }

  async search(namespaces: readonly string[], query: string, limit: number): Promise<MemoryHit[]> {
    const tokens = queryTokens(query);
    if (tokens.length === 0 || namespaces.length === 0) return [];
    if (this.statements.fts) {
      const rows = this.statements.fts.all({ match: ftsQuery(tokens), namespaces: JSON.stringify(namespaces), limit }) as (MemoryRow & { rank: number })[];
      return rows.map((row) => ({ item: memoryItem(row, this.upgrades), score: -row.rank }));
    }
    const rows = this.statements.inNamespaces.all(JSON.stringify(namespaces)) as MemoryRow[];
    return keywordHits(rows, tokens, limit, this.upgrades);
  }

  async vectors(namespaces: readonly string[], embedder: string): Promise<{ item: MemoryItem; text: string; vector: readonly number[] | null }[]> {
    const rows = this.statements.inNamespaces.all(JSON.stringify(namespaces)) as MemoryRow[];
    return memoryVectors(rows, embedder, this.upgrades);
  }

  async setVector(namespace: string, key: string, revision: number, embedder: string, vector: readonly number[]): Promise<void> {
    this.statements.setVector.run({ namespace, key, revision, embedder, embedding: encodeVector(vector) });
  }

  async recordOp(op: NewMemoryOp, result: unknown, endedAt: number): Promise<MemoryOpRecord> {
    this.insertOp(op, result, endedAt);
    return { ...op, schema: MEMORY_OP_SCHEMA, result, endedAt };
  }

  async ops(runId: string): Promise<MemoryOpRecord[]> {
    return (this.statements.ops.all(runId) as MemoryOpRow[]).map(memoryOp);
  }

  private insertOp(op: NewMemoryOp, result: unknown, endedAt: number): void {
    this.statements.insertOp.run({
      ...op,
      schema: MEMORY_OP_SCHEMA,
      request: JSON.stringify(op.request) ?? 'null',
      result: JSON.stringify(result) ?? 'null',
      endedAt,
    });
  }

}

