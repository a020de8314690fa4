import { StoreError } from '../errors';
import { isContentChannel, type ContentChannel } from '../memory/channel';
import {
  MEMORY_OP_SCHEMA,
  upgradeMemoryValue,
  type MemoryHit,
  type MemoryItem,
  type MemoryOpKind,
  type MemoryOpRecord,
  type MemoryRowUpgrade,
} from '../memory/memoryStore';
import { decodeVector, keywordScore } from '../memory/search';
import { int, type Int } from './storeRows';

/** The rows of the `memory` and `memory_ops` tables as SQLite and PostgreSQL return them, and what both stores make of them. */

export interface MemoryRow {
  namespace: string;
  key: string;
  schema: number;
  value: string;
  text: string;
  channel: string;
  revision: number;
  written_by: string;
  embedder: string | null;
  embedding: Uint8Array | null;
  created_at: Int;
  updated_at: Int;
}

export interface MemoryOpRow {
  run_id: string;
  seq: number;
  op_index: number;
  schema: number;
  op: MemoryOpKind;
  namespace: string | null;
  key: string | null;
  request: string;
  result: string;
  started_at: Int;
  ended_at: Int;
}

/** A stored value, upgraded to the newest format this Keel knows; throws a StoreError naming it when it cannot be read. */
export function memoryItem(row: MemoryRow, upgrades: readonly MemoryRowUpgrade[]): MemoryItem {
  const where = `Memory value ${row.namespace}/${row.key}`;
  if (!isContentChannel(row.channel)) throw new StoreError(`${where} has a channel this Keel does not know (${row.channel}).`);
  const current = upgradeMemoryValue({ schema: row.schema, value: JSON.parse(row.value) as unknown, channel: row.channel as ContentChannel }, where, upgrades);
  return {
    namespace: row.namespace,
    key: row.key,
    value: current.value,
    channel: current.channel,
    schema: current.schema,
    revision: row.revision,
    writtenBy: row.written_by,
    createdAt: int(row.created_at),
    updatedAt: int(row.updated_at),
  };
}

/** A journaled memory operation; throws a StoreError when a newer Keel wrote it. */
export function memoryOp(row: MemoryOpRow): MemoryOpRecord {
  if (row.schema > MEMORY_OP_SCHEMA) {
    throw new StoreError(
      `Run ${row.run_id} recorded a memory operation in format ${row.schema}, which this Keel cannot read (it knows format ${MEMORY_OP_SCHEMA}). Upgrade keel-agents.`,
    );
  }
  return {
    runId: row.run_id,
    seq: row.seq,
    opIndex: row.op_index,
    schema: row.schema,
    op: row.op,
    namespace: row.namespace,
    key: row.key,
    request: JSON.parse(row.request) as unknown,
    result: JSON.parse(row.result) as unknown,
    startedAt: int(row.started_at),
    endedAt: int(row.ended_at),
  };
}

/** Keyword search scored in Keel: the best `limit` values sharing words with the query, ties by name. */
export function keywordHits(rows: readonly MemoryRow[], tokens: readonly string[], limit: number, upgrades: readonly MemoryRowUpgrade[]): MemoryHit[] {
  return rows
    .map((row) => ({ row, score: keywordScore(tokens, row.key, row.text) }))
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || compareRows(a.row, b.row))
    .slice(0, limit)
    .map(({ row, score }) => ({ item: memoryItem(row, upgrades), score }));
}

/** Each value with its text and its vector from `embedder`, or null when it has none from it yet. */
export function memoryVectors(
  rows: readonly MemoryRow[],
  embedder: string,
  upgrades: readonly MemoryRowUpgrade[],
): { item: MemoryItem; text: string; vector: readonly number[] | null }[] {
  return rows.map((row) => ({
    item: memoryItem(row, upgrades),
    text: row.text,
    vector: row.embedder === embedder && row.embedding ? decodeVector(row.embedding) : null,
  }));
}

function compareRows(a: MemoryRow, b: MemoryRow): number {
  return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
