import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLoadError, ConfigError } from '../errors';
import type { KeelConfig } from './keelConfig';

/** The file a project's configuration lives in, at its root. */
export const CONFIG_FILE = 'keel.config.ts';

/**
 * Loads the project's keel.config.ts, if it has one: bundled and evaluated like an agent file (it
 * may import what it needs). A broken file is a ConfigError with its file, line and column: where
 * it does not parse or throws, the key Keel does not know or whose value is wrong, or its first
 * export when it has no default one.
 */
export async function loadProjectConfig(root: string): Promise<{ readonly path: string; readonly config: KeelConfig } | undefined> {
  const path = join(root, CONFIG_FILE);
  if (!existsSync(path)) return undefined;
  // What loads and checks the file (esbuild, zod, the agent API it may import) is loaded only for a project that has one.
  const [{ displayPath, evaluateModuleFile }, { checkConfig }] = await Promise.all([import('../agent/loader.js'), import('./keelConfig.js')]);
  let exported: unknown;
  try {
    exported = await evaluateModuleFile(path, CONFIG_FILE);
  } catch (error) {
    if (!(error instanceof AgentLoadError)) throw error;
    // defineConfig refused a key of this very file: point at the key rather than at the call.
    if (error.cause instanceof ConfigError && error.file === path) throw located(error.cause, path, displayPath(path));
    throw new ConfigError(error.message, { cause: error, context: error.context });
  }
  const value = typeof exported === 'object' && exported !== null && 'default' in exported ? (exported as { default: unknown }).default : undefined;
  try {
    if (value === undefined) throw new ConfigError(`${CONFIG_FILE} must export its configuration as the default: export default defineConfig({ ... }).`);
    return { path, config: checkConfig(value, CONFIG_FILE) };
  } catch (error) {
    throw error instanceof ConfigError ? located(error, path, displayPath(path)) : error;
  }
}

/** The mistake as one sentence that starts with the file, line and column of the key it is about. */
function located(error: ConfigError, path: string, shown: string): ConfigError {
  const reason = typeof error.context['reason'] === 'string' ? error.context['reason'] : error.message;
  const keyPath = Array.isArray(error.context['keyPath']) ? error.context['keyPath'].map(String) : [];
  const { line, column } = positionOf(readFileSync(path, 'utf8'), keyPath);
  return new ConfigError(`${shown}:${line}:${column}: ${reason}`, { cause: error, context: { file: path, line, column } });
}

/**
 * Where a key is written in the file's text: each key of the path looked for after the one before
 * it (array indexes skipped); with no key, the first export. Line and column count from 1.
 */
function positionOf(text: string, keyPath: readonly string[]): { line: number; column: number } {
  let offset = /^export\b/m.exec(text)?.index ?? 0;
  let from = 0;
  for (const key of keyPath.filter((segment) => !/^\d+$/.test(segment))) {
    const pattern = new RegExp(`(?<![\\w$])(['"]?)${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\1\\s*:`, 'g');
    pattern.lastIndex = from;
    const match = pattern.exec(text);
    if (!match) break;
    offset = match.index;
    from = match.index + match[0].length;
  }
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}
