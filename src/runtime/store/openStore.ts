import type { CheckpointStore } from './checkpointStore';
import { openPostgresStore } from './postgresStore';
import { openSqliteStore } from './sqliteStore';
import { isPostgresUrl } from './storeLocation';

/**
 * Opens the store a location names, as `--db`, `KEEL_DB` and `keel.databasePath` give it: a
 * `postgres://` or `postgresql://` connection string opens the PostgreSQL store, anything else is
 * the path of an SQLite file (relative to the current directory). The CLI and the runtime process
 * both open their store here.
 */
export async function openStore(location: string): Promise<CheckpointStore> {
  return isPostgresUrl(location) ? openPostgresStore(location.trim()) : openSqliteStore(location);
}
