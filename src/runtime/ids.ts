import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

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
  return `run_${time}${random}`;
}
