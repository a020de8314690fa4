import assert from 'node:assert/strict';
import {
  AttemptsExhaustedError,
  DEFAULT_TOOL_RETRY,
  NonRetryableError,
  RetryableError,
  backoffDelay,
  classifyError,
  parseRetryAfter,
  withRetries,
  type FailedAttempt,
  type RetryPolicy,
} from '../../src/runtime/effects/retry';
import { CircuitBreaker, CircuitOpenError } from '../../src/runtime/effects/circuitBreaker';
import { ModelError } from '../../src/runtime/errors';

const policy: RetryPolicy = { attempts: 4, baseMs: 100, capMs: 1_000, maxRetryAfterMs: 30_000, nonRetryable: ['BudgetExceeded'] };

function httpError(status: number, headers: Record<string, string> = {}): Error & { status: number; headers: Headers } {
  return Object.assign(new Error(`HTTP ${status}`), { status, headers: new Headers(headers) });
}

describe('retry classification', () => {
  const cases: [string, unknown, 'retry' | 'never'][] = [
    ['a 429', httpError(429), 'retry'],
    ['a 500', httpError(500), 'retry'],
    ['a 503', httpError(503), 'retry'],
    ['a 408 request timeout', httpError(408), 'retry'],
    ['a 400', httpError(400), 'never'],
    ['a 401', httpError(401), 'never'],
    ['a 404', httpError(404), 'never'],
    ['a connection reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'retry'],
    ['a connection refused in the cause', new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }), 'retry'],
    ['a timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'retry'],
    ['a model error whose status says 502', new ModelError('openai:x failed', { context: { status: 502 } }), 'retry'],
    ['a model error from a dropped connection', new ModelError('openai:x failed', { context: { transient: true } }), 'retry'],
    ['a plain error', new Error('no flight XY1'), 'never'],
    ['a validation failure', Object.assign(new Error('bad'), { name: 'ZodError' }), 'never'],
    ['an error the tool marks retryable', new RetryableError('busy'), 'retry'],
    ['an error the tool marks non-retryable, even with a 503', Object.assign(new NonRetryableError('no'), { status: 503 }), 'never'],
    ['an error named in nonRetryable, even with a 503', Object.assign(httpError(503), { name: 'BudgetExceeded' }), 'never'],
  ];
  for (const [what, error, expected] of cases) {
    it(`${expected === 'retry' ? 'retries' : 'never retries'} ${what}`, () => {
      assert.equal(classifyError(error, policy).class, expected);
    });
  }

  it('reads Retry-After in seconds, as an HTTP date, and retry-after-ms', () => {
    assert.equal(classifyError(httpError(429, { 'retry-after': '7' }), policy).retryAfterMs, 7000);
    assert.equal(classifyError(httpError(429, { 'retry-after-ms': '250' }), policy).retryAfterMs, 250);
    const now = Date.parse('2026-11-26T12:00:00Z');
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(classifyError(new ModelError('x', { context: { status: 429, retryAfterMs: 1200 } }), policy).retryAfterMs, 1200);
  });
});

describe('backoff', () => {
  it('draws each delay from 0 to min(cap, base * 2^retry): full jitter', () => {
    assert.equal(backoffDelay(0, policy, () => 0.999999), 99);
    assert.equal(backoffDelay(2, policy, () => 0.5), 200);
    assert.equal(backoffDelay(10, policy, () => 0.999999), 999);
    assert.equal(backoffDelay(3, policy, () => 0), 0);
  });

  it('waits at least as long as Retry-After asks', () => {
    assert.equal(backoffDelay(0, policy, () => 0.1, 5_000), 5_000);
    assert.equal(backoffDelay(3, policy, () => 0.9, 10), 720);
  });

  it('spreads the delays of many clients instead of retrying in lockstep', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, policy, Math.random)));
    assert.ok(delays.size > 25, `only ${delays.size} distinct delays out of 50`);
  });
});

describe('withRetries', () => {
  const controller = new AbortController();
  function options(failures: FailedAttempt[], slept: number[], overrides: Partial<RetryPolicy> = {}) {
    return {
      policy: { ...policy, ...overrides },
      signal: controller.signal,
      random: () => 0.5,
      sleep: (ms: number) => {
        slept.push(ms);
        return Promise.resolve();
      },
      now: () => 1000,
      onFailedAttempt: (failure: FailedAttempt) => void failures.push(failure),
    };
  }

  it('retries transient failures with backoff until one succeeds, recording each failure', async () => {
    const failures: FailedAttempt[] = [];
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetries(async (attempt) => {
      calls++;
      if (attempt < 3) throw httpError(attempt === 1 ? 503 : 429, attempt === 2 ? { 'retry-after': '2' } : {});
      return 'ok';
    }, options(failures, slept));

    assert.equal(result, 'ok');
    assert.equal(calls, 3);
    assert.deepEqual(slept, [50, 2000]);
    assert.deepEqual(
      failures.map((failure) => [failure.attempt, failure.class, failure.reason, failure.delayMs]),
      [
        [1, 'retry', 'HTTP 503', 50],
        [2, 'retry', 'HTTP 429', 2000],
      ],
    );
  });

  it('gives up at once on a failure that is not transient', async () => {
    const failures: FailedAttempt[] = [];
    const slept: number[] = [];
    await assert.rejects(
      withRetries(() => Promise.reject(httpError(400)), options(failures, slept)),
      (error: unknown) => error instanceof AttemptsExhaustedError && error.failures.length === 1,
    );
    assert.deepEqual(slept, []);
    assert.equal(failures[0]?.delayMs, undefined);
  });

  it('stops after the policy\'s attempts', async () => {
    const failures: FailedAttempt[] = [];
    let calls = 0;
    await assert.rejects(
      withRetries(() => {
        calls++;
        return Promise.reject(httpError(500));
      }, options(failures, [])),
      AttemptsExhaustedError,
    );
    assert.equal(calls, 4);
    assert.equal(failures.length, 4);
  });

  it('does not wait for a Retry-After longer than the policy allows', async () => {
    const failures: FailedAttempt[] = [];
    await assert.rejects(withRetries(() => Promise.reject(httpError(429, { 'retry-after': '3600' })), options(failures, [])));
    assert.equal(failures.length, 1);
    assert.match(failures[0]?.reason ?? '', /Retry-After over 30000 ms/);
  });

  it('uses the defaults for tools when nothing is configured', () => {
    assert.deepEqual(DEFAULT_TOOL_RETRY, { attempts: 3, baseMs: 200, capMs: 5_000, maxRetryAfterMs: 60_000, nonRetryable: [] });
  });
});

describe('CircuitBreaker', () => {
  const policy = { windowMs: 10_000, minimumCalls: 4, failureRate: 0.5, cooldownMs: 5_000 };

  it('stays closed for a flaky dependency and opens when most calls in the window fail', () => {
    let now = 0;
    const breaker = new CircuitBreaker('tool book_flight', policy, () => now);
    for (const failed of [false, false, true, false, false, true, false, true]) {
      if (failed) breaker.failed();
      else breaker.succeeded();
    }
    assert.equal(breaker.current, 'closed', '3 failures in 8 calls is flaky, not down');

    now = 20_000;
    breaker.failed();
    breaker.failed();
    breaker.failed();
    assert.equal(breaker.current, 'closed', 'three calls are too few to judge, and the old ones left the window');
    breaker.succeeded();
    breaker.failed();
    assert.equal(breaker.current, 'open');
    assert.throws(
      () => breaker.admit(),
      (error: unknown) => error instanceof CircuitOpenError && /tool book_flight is open after 4 of 5 calls failed within 10 s/.test(error.message),
    );
  });

  it('lets one probe through after the cooldown: a failure opens it again, a success closes it', () => {
    let now = 0;
    const breaker = new CircuitBreaker('model openai:x', policy, () => now);
    for (let i = 0; i < 4; i++) breaker.failed();
    assert.equal(breaker.current, 'open');

    now += 5_000;
    assert.equal(breaker.current, 'half_open');
    breaker.admit();
    assert.throws(() => breaker.admit(), CircuitOpenError, 'only one probe at a time');
    breaker.failed();
    assert.equal(breaker.current, 'open', 'a failed probe opens it again');
    assert.throws(() => breaker.admit(), /its probe call failed/);

    now += 5_000;
    breaker.admit();
    breaker.succeeded();
    assert.equal(breaker.current, 'closed');
    breaker.admit();
  });

  it('counts in buckets of the window: calls older than the window stop counting however many came after', () => {
    let now = 0;
    const breaker = new CircuitBreaker('tool busy', policy, () => now);
    for (let i = 0; i < 10_000; i++) breaker.succeeded();
    now = 9_000;
    for (let i = 0; i < 4; i++) breaker.failed();
    assert.equal(breaker.current, 'closed', '4 failures among 10,004 calls');
    now = 11_000;
    breaker.failed();
    assert.equal(breaker.current, 'open', 'the 10,000 successes left the window; 5 of 5 calls in it failed');
  });
});
