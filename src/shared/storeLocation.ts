import { join } from 'node:path';

/**
 * Where a workspace keeps its runs, as every front end names it: the editor decides from this
 * whether there are runs to show before it starts a runtime process. Nothing here opens a store.
 */

/** Where a workspace keeps its runs, relative to its root. */
export const DATABASE_RELATIVE_PATH = join('.keel', 'keel.db');

export function databasePathFor(workspaceRoot: string): string {
  return join(workspaceRoot, DATABASE_RELATIVE_PATH);
}

/** Whether `location` is a PostgreSQL connection string (`postgres://…` or `postgresql://…`). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location.trim());
}
