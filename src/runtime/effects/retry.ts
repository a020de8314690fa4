import { AttemptInterruptedError } from '../agent/steps';
import { KeelError, RunPausedError, describeError } from '../errors';
import { optional } from '../objects';

/**
 * How often and how patiently a failing step is tried again. Delays follow exponential backoff
 * with full jitter: before retry n (0-based), sleep random(0, min(capMs, baseMs * 2^n)), and at
 * least as long as a server's Retry-After asks.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. 1 means never retry. */
  readonly attempts: number;
  readonly baseMs: number;
  readonly capMs: number;
  /** A Retry-After longer than this is not waited for: the step fails instead. */
  readonly maxRetryAfterMs: number;
  /** Error names (`error.name`) that must never be retried, whatever else they look like. */
  readonly nonRetryable: readonly string[];
}

export const DEFAULT_MODEL_RETRY: RetryPolicy = {
  attempts: 4,
  baseMs: 500,
  capMs: 20_000,
  maxRetryAfterMs: 60_000,
  nonRetryable: [],
};

export const DEFAULT_TOOL_RETRY: RetryPolicy = {
  attempts: 3,
  baseMs: 200,
  capMs: 5_000,
  maxRetryAfterMs: 60_000,
  nonRetryable: [],
};

export function retryPolicy(defaults: RetryPolicy, overrides: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...defaults, ...overrides };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new KeelError(`A retry policy needs a whole number of attempts of at least 1 (got ${String(policy.attempts)}).`);
  }
  if (!(policy.baseMs >= 0) || !(policy.capMs >= policy.baseMs)) {
    throw new KeelError(`A retry policy needs 0 <= baseMs <= capMs (got baseMs ${policy.baseMs}, capMs ${policy.capMs}).`);
  }
  return policy;
}

/** Throw this from a tool to say: this failure is transient, try again (after `retryAfterMs`, if given). */
export class RetryableError extends KeelError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Throw this from a tool to say: trying again cannot help. */
export class NonRetryableError extends KeelError {}

export type RetryClass = 'retry' | 'never';

export interface Classification {
  readonly class: RetryClass;
  /** Why, in a few words: `HTTP 429`, `ECONNRESET`, `not a transient failure`... */
  readonly reason: string;
  readonly retryAfterMs?: number;
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Decides whether an error is worth another attempt: timeouts, 429, 5xx and dropped connections are. */
export function classifyError(error: unknown, policy: RetryPolicy): Classification {
  if (error instanceof NonRetryableError) return { class: 'never', reason: 'marked non-retryable' };
  const facts = errorFacts(error);
  if (facts.name && policy.nonRetryable.includes(facts.name)) return { class: 'never', reason: `${facts.name} is non-retryable` };
  if (error instanceof RetryableError) return withRetryAfter({ class: 'retry', reason: 'marked retryable' }, error.retryAfterMs);
  if (facts.status !== undefined) {
    const transient = facts.status === 408 || facts.status === 425 || facts.status === 429 || facts.status >= 500;
    return withRetryAfter({ class: transient ? 'retry' : 'never', reason: `HTTP ${facts.status}` }, facts.retryAfterMs);
  }
  if (facts.code && TRANSIENT_CODES.has(facts.code)) return { class: 'retry', reason: facts.code };
  if (facts.transient) return { class: 'retry', reason: facts.name ?? 'connection failure' };
  if (facts.name === 'TimeoutError') return { class: 'retry', reason: 'timeout' };
  return { class: 'never', reason: 'not a transient failure' };
}

function withRetryAfter(classification: Classification, retryAfterMs: number | undefined): Classification {
  return retryAfterMs === undefined ? classification : { ...classification, retryAfterMs };
}

interface ErrorFacts {
  name?: string;
  status?: number;
  code?: string;
  transient?: boolean;
  retryAfterMs?: number;
}

/** Reads the usual shapes of HTTP and network errors, and of Keel's own (facts in `context`). */
function errorFacts(error: unknown): ErrorFacts {
  if (typeof error !== 'object' || error === null) return {};
  const record = error as Record<string, unknown>;
  const context = (typeof record['context'] === 'object' && record['context'] !== null ? record['context'] : {}) as Record<
    string,
    unknown
  >;
  const cause = (typeof record['cause'] === 'object' && record['cause'] !== null ? record['cause'] : {}) as Record<string, unknown>;
  const number = (...values: unknown[]) => values.find((value): value is number => typeof value === 'number');
  const string = (...values: unknown[]) => values.find((value): value is string => typeof value === 'string');
  return {
    ...(typeof record['name'] === 'string' ? { name: record['name'] } : {}),
    ...optional('status', number(record['status'], record['statusCode'], context['status'])),
    ...optional('code', string(record['code'], cause['code'], context['code'])),
    ...(context['transient'] === true ? { transient: true } : {}),
    ...optional('retryAfterMs', number(record['retryAfterMs'], context['retryAfterMs']) ?? headerRetryAfter(record['headers'])),
  };
}

function headerRetryAfter(headers: unknown): number | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const get = (name: string): string | null | undefined =>
    typeof (headers as Headers).get === 'function'
      ? (headers as Headers).get(name)
      : ((headers as Record<string, string | undefined>)[name] ?? null);
  const ms = get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  return parseRetryAfter(get('retry-after') ?? null);
}

/** `Retry-After` as milliseconds from now: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The delay before retry `retry` (0 for the first retry): full jitter, raised to any Retry-After. */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number, retryAfterMs?: number): number {
  const jitter = Math.floor(random() * Math.min(policy.capMs, policy.baseMs * 2 ** retry));
  return retryAfterMs === undefined ? jitter : Math.max(jitter, Math.ceil(retryAfterMs));
}

export interface FailedAttempt {
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly error: string;
  readonly class: RetryClass;
  readonly reason: string;
  /** How long Keel waited before the next attempt; absent when it gave up. */
  readonly delayMs?: number;
  readonly at: number;
}

export interface RetryOptions {
  readonly policy: RetryPolicy;
  readonly signal: AbortSignal;
  readonly random: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly now: () => number;
  /** Called after each failed attempt, before any wait: record it. */
  readonly onFailedAttempt: (failure: FailedAttempt) => Promise<void> | void;
}

/** Error thrown when every attempt failed or a failure was not worth retrying; `cause` is the last error. */
export class AttemptsExhaustedError extends KeelError {
  constructor(
    readonly lastError: unknown,
    readonly failures: readonly FailedAttempt[],
  ) {
    super(describeError(lastError), { cause: lastError });
  }
}

/** Runs `operation` until it succeeds, a failure is not retryable, or the attempts run out. */
export async function withRetries<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const failures: FailedAttempt[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      // Not a failed attempt: the run stopped around it (cancelled, its process died, or it pauses).
      if (options.signal.aborted || error instanceof AttemptInterruptedError || error instanceof RunPausedError) throw error;
      const classification = classifyError(error, options.policy);
      const last = attempt >= options.policy.attempts;
      const tooLong =
        classification.retryAfterMs !== undefined && classification.retryAfterMs > options.policy.maxRetryAfterMs;
      const retry = classification.class === 'retry' && !last && !tooLong;
      const delayMs = retry ? backoffDelay(attempt - 1, options.policy, options.random, classification.retryAfterMs) : undefined;
      const failure: FailedAttempt = {
        attempt,
        error: describeError(error),
        class: classification.class,
        reason: tooLong ? `${classification.reason}, Retry-After over ${options.policy.maxRetryAfterMs} ms` : classification.reason,
        ...(delayMs === undefined ? {} : { delayMs }),
        at: options.now(),
      };
      failures.push(failure);
      await options.onFailedAttempt(failure);
      if (delayMs === undefined) throw new AttemptsExhaustedError(error, failures);
      await options.sleep(delayMs, options.signal);
    }
  }
}

/** A sleep that ends early (rejecting) when the signal aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
