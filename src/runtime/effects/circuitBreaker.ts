import { KeelError } from '../errors';

export interface BreakerPolicy {
  /** The window over which calls are counted. */
  readonly windowMs: number;
  /** Calls needed in the window before the circuit may open: a few failures prove nothing. */
  readonly minimumCalls: number;
  /** The share of failed calls in the window (0 to 1) that opens the circuit. */
  readonly failureRate: number;
  /** How long an open circuit refuses calls before letting one probe through. */
  readonly cooldownMs: number;
}

/**
 * A dependency that fails at least half of 10 or more calls within a minute is down: stop calling
 * it for 30 s. A flaky one (say 30% failures) keeps its circuit closed and is handled by retries.
 */
export const DEFAULT_BREAKER: BreakerPolicy = { windowMs: 60_000, minimumCalls: 10, failureRate: 0.5, cooldownMs: 30_000 };

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Raised instead of calling a tool or model whose circuit is open; never retried. */
export class CircuitOpenError extends KeelError {}

/**
 * A circuit breaker for one dependency (a tool, a model endpoint). It opens on a spike of
 * failures, refuses calls while open, then lets a single probe through: success closes it,
 * failure opens it again.
 */
export class CircuitBreaker {
  private calls: { at: number; failed: boolean }[] = [];
  private state: BreakerState = 'closed';
  private openedAt = 0;
  private probing = false;
  private lastSpike = '';

  constructor(
    readonly name: string,
    private readonly policy: BreakerPolicy,
    private readonly now: () => number,
  ) {}

  get current(): BreakerState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.policy.cooldownMs) return 'half_open';
    return this.state;
  }

  /** Throws CircuitOpenError when the call may not go ahead; otherwise admits it. */
  admit(): void {
    const state = this.current;
    if (state === 'closed') return;
    if (state === 'half_open' && !this.probing) {
      this.state = 'half_open';
      this.probing = true;
      return;
    }
    const retryAt = new Date(this.openedAt + this.policy.cooldownMs).toISOString();
    throw new CircuitOpenError(
      `The circuit for ${this.name} is open after ${this.lastSpike}; Keel will let a call through again at ${retryAt}.`,
      { context: { breaker: this.name, retryAt } },
    );
  }

  succeeded(): void {
    if (this.state === 'half_open') {
      this.state = 'closed';
      this.calls = [];
    }
    this.probing = false;
    this.record(false);
  }

  failed(): void {
    this.probing = false;
    if (this.state === 'half_open') {
      this.lastSpike = 'its probe call failed';
      this.open();
      return;
    }
    this.record(true);
    const failures = this.calls.filter((call) => call.failed).length;
    if (this.calls.length >= this.policy.minimumCalls && failures / this.calls.length >= this.policy.failureRate) {
      this.lastSpike = `${failures} of ${this.calls.length} calls failed within ${Math.round(this.policy.windowMs / 1000)} s`;
      this.open();
    }
  }

  private record(failed: boolean): void {
    const now = this.now();
    this.calls = this.calls.filter((call) => now - call.at < this.policy.windowMs);
    this.calls.push({ at: now, failed });
  }

  private open(): void {
    this.state = 'open';
    this.openedAt = this.now();
    this.calls = [];
  }
}

/** The breakers of one runtime process, one per dependency name. */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly policy: BreakerPolicy = DEFAULT_BREAKER,
    private readonly now: () => number = Date.now,
  ) {}

  for(name: string): CircuitBreaker {
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = new CircuitBreaker(name, this.policy, this.now);
      this.breakers.set(name, breaker);
    }
    return breaker;
  }
}
