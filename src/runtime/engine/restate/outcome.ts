import { DEFAULT_TOOL_RETRY, classifyError } from '../../effects/retry';
import { decodeError, encodeError, type EncodedError } from './errorCodec';

/** What a journaled step recorded: its value or its error, and the time it ended (the run's clock). */
export type Outcome = { readonly ok: true; readonly value?: unknown; readonly at: number } | { readonly ok: false; readonly error: EncodedError; readonly at: number };

/**
 * Runs `action` and records how it ended as a value: JSON data (so that the first execution sees
 * exactly what a replay will), or the error as Keel reads it. With `translate: 'final'`, an error
 * worth another attempt (a dropped database connection) is thrown instead, for Restate to retry.
 */
export async function outcomeOf(action: () => Promise<unknown>, translate: 'all' | 'final'): Promise<Outcome> {
  try {
    const value = await action();
    const at = Date.now();
    return value === undefined ? { ok: true, at } : { ok: true, value: JSON.parse(JSON.stringify(value)) as unknown, at };
  } catch (error) {
    if (translate === 'final' && classifyError(error, DEFAULT_TOOL_RETRY).class === 'retry') throw error;
    return { ok: false, error: encodeError(error), at: Date.now() };
  }
}

/** The value an outcome recorded, or its error thrown again as the same kind of error. */
export function valueOf<T>(outcome: Outcome): T {
  if (!outcome.ok) throw decodeError(outcome.error);
  return outcome.value as T;
}
