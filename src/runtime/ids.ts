import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RUN_ID_PREFIX = 'run_';

/**
 * A run id that sorts by creation time: `run_` + 10 characters of millisecond time + 12 random
 * characters (Crockford base32, lower case). Idempotency keys derive from it, never from the clock.
 */
export function newRunId(now: number = Date.now()): string {
  let time = '';
  let rest = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  const random = Array.from(randomBytes(12), (byte) => ALPHABET[byte % 32]).join('');
  return `${RUN_ID_PREFIX}${time}${random}`;
}

/**
 * What a run id typed by a person starts with: as typed, or with `run_` put in front when it was
 * left out (`keel show 01m99eeg` is `keel show run_01m99eeg`); for the stores' resolveRunId.
 */
export function runIdPrefix(typed: string): string {
  return typed.startsWith(RUN_ID_PREFIX) || RUN_ID_PREFIX.startsWith(typed) ? typed : `${RUN_ID_PREFIX}${typed}`;
}
