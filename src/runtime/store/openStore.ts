import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from '../errors';
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

/**
 * Opens the run database, making a new SQLite file only where Keel keeps it by default (folders
 * included) or where a person named it (`namedBy`: `--db`, `KEEL_DB`...) in a folder that exists,
 * so that a mistyped path is refused rather than made. A new file is reported once to `log`.
 */
export async function openRunDatabase(location: string, namedBy: string | undefined, log?: (line: string) => void): Promise<CheckpointStore> {
  if (isPostgresUrl(location) || location === ':memory:') return openStore(location);
  const isNew = !existsSync(location);
  if (isNew && namedBy !== undefined && !existsSync(dirname(location))) {
    throw new StoreError(
      `${namedBy} names the database ${location}, but its folder ${dirname(location)} does not exist; Keel makes no folders for a database it is given, so correct the path or create the folder.`,
      { context: { location, namedBy } },
    );
  }
  const store = await openStore(location);
  if (isNew) log?.(`created a new run database at ${location}`);
  return store;
}
