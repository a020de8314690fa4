import { StoreError } from '../errors';
import type { CheckpointStore } from './checkpointStore';

/**
 * A part of the run database that Keel's own stores keep besides runs (the alert outbox, the
 * review queue), or a StoreError naming what is missing from a store that does not keep it.
 */
export function storePart<K extends string, T extends object>(store: CheckpointStore, key: K, what: string): T {
  const part = (store as unknown as Partial<Record<K, unknown>>)[key];
  if (typeof part === 'object' && part !== null) return part as T;
  throw new StoreError(`The run database at ${store.location} keeps no ${what}; use Keel's SQLite or PostgreSQL store.`);
}
