import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { describeError } from '../runtime/errors';
import { Host, type HostOptions } from '../runtime/host/host';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { KEEL_VERSION } from '../runtime/version';
import { UsageError } from './command';
import { styleFor } from './style';

/** What every command shares: output, argument parsing, the database. */

export const out = process.stdout;
export const style = styleFor(out);

/** What happened in the background (a trace exported, a database created): a dim line on stderr, apart from the output. */
export function note(line: string): void {
  process.stderr.write(`${styleFor(process.stderr).dim(line)}\n`);
}

/** Parses a command's arguments; every command also takes `--db <path or postgres:// URL>`. */
export function parse<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options: { db: { type: 'string' as const }, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

/**
 * The host of a command: the project found from the working folder, its keel.config.ts, the
 * environment and the command's flags on top (see docs/configuration.md).
 */
export async function withHost<T>(
  flags: Readonly<Record<string, unknown>>,
  use: (host: Host) => Promise<T>,
  options: Pick<HostOptions, 'readOnly'> = {},
): Promise<T> {
  const host = await Host.open({
    ...options,
    cwd: process.cwd(),
    flags: Object.fromEntries(Object.entries(flags).filter((entry): entry is [string, string] => typeof entry[1] === 'string')),
    version: KEEL_VERSION,
    log: note,
  });
  try {
    // A flag given to this command that cannot be used is a mistake in how keel was called.
    const misused = host.config.problems.find((problem) => String(problem.context['source']).startsWith('flag '));
    if (misused) throw new UsageError(misused.message);
    return await use(host);
  } finally {
    await host.close();
  }
}

/**
 * The store of the command's project (`--db`, else KEEL_DB, else keel.config.ts, else .keel/keel.db),
 * through a host that only reads: the command starts without loading the runtime's code.
 */
export function withStore<T>(db: string | undefined, use: (store: CheckpointStore) => Promise<T>): Promise<T> {
  return withHost({ db }, (host) => use(host.store), { readOnly: true });
}
