import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export { DATABASE_RELATIVE_PATH, databasePathFor } from '../shared/storeLocation';

/**
 * The project a command run in `cwd` belongs to: the nearest folder holding `keel.config.ts` or
 * `.keel`, else the nearest holding `package.json`, else `cwd` itself.
 */
export function findWorkspaceRoot(cwd: string): string {
  const start = resolve(cwd);
  return findUp(start, 'keel.config.ts', '.keel') ?? findUp(start, 'package.json') ?? start;
}

function findUp(start: string, ...names: string[]): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (names.some((name) => existsSync(join(dir, name)))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}
