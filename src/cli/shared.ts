import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { KeelError, describeError } from '../runtime/errors';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { openStore } from '../runtime/store/openStore';
import { databasePathFor, findWorkspaceRoot } from '../runtime/workspace';
import { styleFor } from './style';

/** What every command shares: output, argument parsing, the database. */

/** A mistake in how keel was called: exit code 2. */
export class UsageError extends KeelError {}

/** One `keel` command: its lines in the usage text, and what it does (returning the exit code). */
export interface Command {
  readonly usage: readonly string[];
  run(args: readonly string[]): Promise<number>;
}

export const out = process.stdout;
export const style = styleFor(out);

/** Parses a command's arguments; every command also takes `--db <path or postgres:// URL>`. */
export function parse<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options: { db: { type: 'string' as const }, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

/** The store `--db` names, else `KEEL_DB`, else the workspace's SQLite file. */
export async function withStore<T>(db: string | undefined, use: (store: CheckpointStore) => Promise<T>): Promise<T> {
  const store = await openStore(db ?? process.env['KEEL_DB'] ?? databasePathFor(findWorkspaceRoot(process.cwd())));
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
