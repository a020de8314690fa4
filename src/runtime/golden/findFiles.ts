import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Folders never searched for golden files. */
const SKIPPED = new Set(['node_modules', '.git', '.keel', 'dist', 'out', '__cassettes__']);

/** The default glob of `keel test` and `keel record`. */
export const DEFAULT_GOLDEN_GLOB = '**/*.golden.yaml';

/**
 * The files a pattern names, sorted: a file path as is, or a glob (`*`, `**`, `?`, `{a,b}`)
 * matched against paths relative to `cwd`. node_modules, .git and build folders are skipped.
 */
export function findFiles(pattern: string, cwd: string): string[] {
  const absolute = resolve(cwd, pattern);
  if (!/[*?{]/.test(pattern)) return existsSync(absolute) && statSync(absolute).isFile() ? [absolute] : [];
  const base = staticPrefix(isAbsolute(pattern) ? pattern : join(cwd, pattern));
  if (!existsSync(base)) return [];
  const matcher = globToRegExp(toPosix(isAbsolute(pattern) ? pattern : join(cwd, pattern)));
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(path);
      } else if (entry.isFile() && matcher.test(toPosix(path))) {
        found.push(path);
      }
    }
  };
  walk(base);
  return found.sort();
}

/** The folder a glob starts from: its path up to the first segment with a wildcard. */
function staticPrefix(pattern: string): string {
  const parts = pattern.split(/[\\/]/);
  const fixed: string[] = [];
  for (const part of parts) {
    if (/[*?{]/.test(part)) break;
    fixed.push(part);
  }
  return fixed.join(sep) || sep;
}

/** `**` any folders (or none), `*` anything but a slash, `?` one character, `{a,b}` either. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index] ?? '';
    if (char === '*') {
      if (glob[index + 1] === '*') {
        const slash = glob[index + 2] === '/';
        source += slash ? '(?:.*/)?' : '.*';
        index += slash ? 2 : 1;
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '{') {
      const close = glob.indexOf('}', index);
      if (close < 0) {
        source += '\\{';
        continue;
      }
      source += `(?:${glob
        .slice(index + 1, close)
        .split(',')
        .map((option) => globToRegExp(option).source.slice(1, -1))
        .join('|')})`;
      index = close;
    } else {
      source += char.replace(/[.+^$()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

/** A path as a person reads it: relative to `cwd` when inside it. */
export function displayPath(file: string, cwd: string): string {
  const fromCwd = relative(cwd, file);
  return fromCwd.startsWith('..') || isAbsolute(fromCwd) ? file : fromCwd;
}
