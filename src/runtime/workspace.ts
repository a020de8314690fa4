import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Where a workspace keeps its runs, relative to its root. */
export const DATABASE_RELATIVE_PATH = join('.keel', 'keel.db');

/**
 * The project a command run in `cwd` belongs to: the nearest folder holding `keel.config.ts` or
 * `.keel`, else the nearest holding `package.json`, else `cwd` itself.
 */
export function findWorkspaceRoot(cwd: string): string {
  const start = resolve(cwd);
  return findUp(start, 'keel.config.ts', '.keel') ?? findUp(start, 'package.json') ?? start;
}

export function databasePathFor(workspaceRoot: string): string {
  return join(workspaceRoot, DATABASE_RELATIVE_PATH);
}

function findUp(start: string, ...names: string[]): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (names.some((name) => existsSync(join(dir, name)))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}
