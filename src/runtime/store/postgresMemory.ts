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
import { encodeVector, queryTokens } from '../memory/search';
import type { Connection } from './postgresConnection';
import { int, type Int } from './storeRows';
import type { SqlSession } from './postgresMigrations';

/**
 * Long-term memory and the memory journal in the PostgreSQL store (its second migration), as the
 * SQLite store keeps them. Keyword search scores the namespaces' values here, as SQLite does
 * where it has no full-text index.
 */
export class PostgresMemoryStore implements MemoryStore {
  constructor(
    private readonly connection: Connection,
    private readonly upgrades: readonly MemoryRowUpgrade[] = MEMORY_ROW_UPGRADES,
  ) {}

  async get(namespace: string, key: string): Promise<MemoryItem | undefined> {
    const [row] = await this.connection.query('SELECT * FROM memory WHERE namespace = $1 AND key = $2', [namespace, key]);
    return row === undefined ? undefined : memoryItem(row as MemoryRow, this.upgrades);
  }

  async list(namespace: string, options: { limit?: number } = {}): Promise<MemoryItem[]> {
    const rows = await this.connection.query('SELECT * FROM memory WHERE namespace = $1 ORDER BY key LIMIT $2', [namespace, options.limit ?? 1000]);
    return (rows as MemoryRow[]).map((row) => memoryItem(row, this.upgrades));
  }

  async namespaces(): Promise<NamespaceSummary[]> {
    const rows = (await this.connection.query(
      'SELECT namespace, count(*)::int AS count, max(updated_at) AS updated_at FROM memory GROUP BY namespace ORDER BY namespace',
    )) as { namespace: string; count: number; updated_at: Int }[];
    return rows.map((row) => ({ namespace: row.namespace, count: row.count, updatedAt: int(row.updated_at) }));
  }

  /**
   * Writes under a lock on the value's name (an advisory lock, since a value not written yet has no
   * row to lock), so that `expectedRevision` is checked against what no other writer can change.
   */
  put(write: MemoryWrite, op?: NewMemoryOp): Promise<MemoryItem> {
    return this.connection.transaction(async (db) => {
      await lockName(db, write.namespace, write.key);
      const [current] = (await db.query('SELECT revision FROM memory WHERE namespace = $1 AND key = $2', [write.namespace, write.key])).rows as {
        revision: number;
      }[];
      if (write.expectedRevision !== undefined && (current?.revision ?? null) !== write.expectedRevision) {
        throw new StoreError(
          current
            ? `${write.namespace}/${write.key} changed since it was read (it is at revision ${current.revision} now, not ${write.expectedRevision ?? 'new'}); read it again.`
            : `${write.namespace}/${write.key} was deleted since it was read.`,
        );
      }
      const { rows } = await db.query(
        `INSERT INTO memory (namespace, key, schema, value, text, channel, revision, written_by, embedder, embedding, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $10)
         ON CONFLICT (namespace, key) DO UPDATE SET schema = excluded.schema, value = excluded.value, text = excluded.text,
           channel = excluded.channel, revision = memory.revision + 1, written_by = excluded.written_by, embedder = excluded.embedder,
           embedding = excluded.embedding, updated_at = excluded.updated_at
         RETURNING *`,
        [
          write.namespace,
          write.key,
          latestMemorySchema(this.upgrades),
          JSON.stringify(write.value) ?? 'null',
          write.text,
          write.channel,
          write.writtenBy,
          write.embedding?.embedder ?? null,
          write.embedding ? encodeVector(write.embedding.vector) : null,
          write.at,
        ],
      );
      const item = memoryItem(rows[0] as MemoryRow, this.upgrades);
      if (op) await insertOp(db, op, item, write.at);
      return item;
    });
  }

  delete(namespace: string, key: string, op?: NewMemoryOp, at = Date.now()): Promise<boolean> {
    return this.connection.transaction(async (db) => {
      await lockName(db, namespace, key);
      const { rows } = await db.query('DELETE FROM memory WHERE namespace = $1 AND key = $2 RETURNING key', [namespace, key]);
      const deleted = rows.length > 0;
      if (op) await insertOp(db, op, { deleted }, at);
      return deleted;
    });
  }

  async search(namespaces: readonly string[], query: string, limit: number): Promise<MemoryHit[]> {
    const tokens = queryTokens(query);
    if (tokens.length === 0 || namespaces.length === 0) return [];
    const rows = (await this.inNamespaces(namespaces)) as MemoryRow[];
    return keywordHits(rows, tokens, limit, this.upgrades);
  }

  async vectors(namespaces: readonly string[], embedder: string): Promise<{ item: MemoryItem; text: string; vector: readonly number[] | null }[]> {
    const rows = (await this.inNamespaces(namespaces)) as MemoryRow[];
    return memoryVectors(rows, embedder, this.upgrades);
  }

  async setVector(namespace: string, key: string, revision: number, embedder: string, vector: readonly number[]): Promise<void> {
    await this.connection.query('UPDATE memory SET embedder = $4, embedding = $5 WHERE namespace = $1 AND key = $2 AND revision = $3', [
      namespace,
      key,
      revision,
      embedder,
      encodeVector(vector),
    ]);
  }

  recordOp(op: NewMemoryOp, result: unknown, endedAt: number): Promise<MemoryOpRecord> {
    return this.connection.transaction(async (db) => {
      await insertOp(db, op, result, endedAt);
      return { ...op, schema: MEMORY_OP_SCHEMA, result, endedAt };
    });
  }

  async ops(runId: string): Promise<MemoryOpRecord[]> {
    return ((await this.connection.query('SELECT * FROM memory_ops WHERE run_id = $1 ORDER BY seq, op_index', [runId])) as MemoryOpRow[]).map(memoryOp);
  }

  private inNamespaces(namespaces: readonly string[]): Promise<unknown[]> {
    return this.connection.query('SELECT * FROM memory WHERE namespace = ANY($1::text[]) ORDER BY namespace, key', [[...namespaces]]);
  }

}

/** Holds, until the transaction ends, a lock on one value's name. */
async function lockName(db: SqlSession, namespace: string, key: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify(['keel.memory', namespace, key])]);
}

async function insertOp(db: SqlSession, op: NewMemoryOp, result: unknown, endedAt: number): Promise<void> {
  await db.query(
    `INSERT INTO memory_ops (run_id, seq, op_index, schema, op, namespace, key, request, result, started_at, ended_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      op.runId,
      op.seq,
      op.opIndex,
      MEMORY_OP_SCHEMA,
      op.op,
      op.namespace,
      op.key,
      JSON.stringify(op.request) ?? 'null',
      JSON.stringify(result) ?? 'null',
      op.startedAt,
      endedAt,
    ],
  );
}

