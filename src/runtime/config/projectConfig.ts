import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateModuleFile } from '../agent/loader';
import { AgentLoadError } from '../errors';
import { ConfigError, type KeelConfig } from './keelConfig';
import { configFromExports } from './resolveConfig';

/** The file a project's configuration lives in, at its root. */
export const CONFIG_FILE = 'keel.config.ts';

/**
 * Loads the project's keel.config.ts, if it has one: bundled and evaluated like an agent file (it
 * may import what it needs). A broken file is a ConfigError with its file, line and column.
 */
export async function loadProjectConfig(root: string): Promise<{ readonly path: string; readonly config: KeelConfig } | undefined> {
  const path = join(root, CONFIG_FILE);
  if (!existsSync(path)) return undefined;
  let exported: unknown;
  try {
    exported = await evaluateModuleFile(path, CONFIG_FILE);
  } catch (error) {
    if (error instanceof AgentLoadError) throw new ConfigError(error.message, { cause: error, context: error.context });
    throw error;
  }
  return { path, config: configFromExports(exported, path) };
}
