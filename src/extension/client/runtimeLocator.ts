import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RuntimeLocation {
  /** The runtime process script to run with Node. */
  readonly script: string;
  /** Where it came from, for the log. */
  readonly source: 'workspace' | 'bundled';
}

/**
 * Prefers the keel-agents the workspace installed (so agents run on the version they were written
 * for, as the ESLint and Vitest extensions do), else the copy inside the extension. `entry` is the
 * script: the runtime process, or the replay debugger's adapter.
 */
export function locateRuntime(workspaceRoot: string | undefined, extensionPath: string, entry: 'daemon.js' | 'debugAdapter.js' = 'daemon.js'): RuntimeLocation {
  if (workspaceRoot) {
    const packageDir = join(workspaceRoot, 'node_modules', 'keel-agents');
    const script = join(packageDir, 'dist', entry);
    if (existsSync(script) && isKeelPackage(join(packageDir, 'package.json'))) return { script, source: 'workspace' };
  }
  return { script: join(extensionPath, 'dist', entry), source: 'bundled' };
}

function isKeelPackage(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'keel-agents';
  } catch {
    return false;
  }
}
