import { resolve } from 'node:path';
import { isPostgresUrl } from '../../shared/storeLocation';

/**
 * Where a store lives, as people give it (`--db`, `KEEL_DB`, `keel.databasePath`): a PostgreSQL
 * connection string, or else the path of an SQLite file. Nothing here opens a store.
 */

export { isPostgresUrl };

/** A connection string stays as it is; a file path becomes absolute, relative to `cwd`. */
export function normalizeStoreLocation(location: string, cwd = process.cwd()): string {
  return isPostgresUrl(location) ? location.trim() : resolve(cwd, location);
}

/** Query parameters that carry secrets in libpq and node-postgres connection strings. */
const SECRET_PARAMETERS = /^(password|sslpassword)$/i;

/**
 * A connection string fit for messages and logs: without its password, in the user part or as a
 * parameter. What cannot be parsed is not shown at all.
 */
export function redactConnectionString(connectionString: string): string {
  let url: URL;
  try {
    url = new URL(connectionString.trim());
  } catch {
    return 'a PostgreSQL database (its connection string could not be parsed)';
  }
  url.password = '';
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAMETERS.test(name)) url.searchParams.delete(name);
  }
  return url.toString();
}
