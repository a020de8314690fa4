import { KeelError } from '../runtime/errors';

/** A mistake in how keel was called: exit code 2. */
export class UsageError extends KeelError {}

/** One `keel` command: its lines in the usage text, and what it does (returning the exit code). */
export interface Command {
  readonly usage: readonly string[];
  run(args: readonly string[]): Promise<number>;
}
