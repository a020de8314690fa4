import type Database from 'better-sqlite3';
import { StoreError } from '../errors';
import type { Migration } from './sqliteMigrations';

/** What makes an SQLite file a Keel database: its application id, its schema version, and whether it is intact. */
/** `PRAGMA application_id` of Keel databases: "KEEL" in ASCII. */
export const KEEL_APPLICATION_ID = 0x4b45454c;

/** Throws a StoreError, without writing anything, when the file is not Keel's or is from a newer Keel. */
export function checkCompatible(db: Database.Database, path: string, latest: number): { applicationId: number; version: number } {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const foreign =
    applicationId === 0
      ? (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n > 0
      : applicationId !== KEEL_APPLICATION_ID;
  if (foreign) {
    throw new StoreError(
      `${path} is an SQLite database that Keel did not create; point Keel at another file (keel.databasePath or --db).`,
    );
  }
  if (version > latest) {
    throw new StoreError(
      `${path} was written by a newer Keel (schema version ${version}; this Keel understands up to ${latest}). ` +
        'Upgrade keel-agents to open it; it has not been changed.',
    );
  }
  return { applicationId, version };
}

/**
 * Throws, before anything writes, when SQLite finds the file damaged: pages overwritten, the file
 * cut short. Writing into a damaged database could lose what it still holds.
 */
export function checkIntact(db: Database.Database): void {
  const verdict = String(db.pragma('quick_check(1)', { simple: true }));
  if (verdict === 'ok') return;
  const problem = verdict.replace(/^\*\*\* in database main \*\*\*\s*/, '').replace(/\s+/g, ' ');
  throw new Error(`it is damaged: ${problem}`);
}

/** Brings the file to the latest schema in one write transaction; a current file is not written to. */
export function migrate(db: Database.Database, path: string, migrations: readonly Migration[]): void {
  const latest = migrations.length;
  const isCurrent = ({ applicationId, version }: { applicationId: number; version: number }) =>
    applicationId === KEEL_APPLICATION_ID && version === latest;
  // A database that is already current is not written to: opening it to read changes nothing.
  if (isCurrent(checkCompatible(db, path, latest))) return;
  db.transaction(() => {
    // Checked again inside the transaction: another process may have created the file meanwhile.
    const found = checkCompatible(db, path, latest);
    if (isCurrent(found)) return;
    if (found.applicationId === 0) db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
    for (const migration of migrations.slice(found.version)) migration.up(db);
    db.pragma(`user_version = ${latest}`);
  }).immediate();
}
