import { KeelError } from '../errors';

export interface BreakerPolicy {
  /** Failures within `windowMs` that open the circuit. */
  readonly failureThreshold: number;
  readonly windowMs: number;
  /** How long an open circuit refuses calls before letting one probe through. */
  readonly cooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerPolicy = { failureThreshold: 5, windowMs: 60_000, cooldownMs: 30_000 };

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Raised instead of calling a tool or model whose circuit is open; never retried. */
export class CircuitOpenError extends KeelError {}

/**
 * A circuit breaker for one dependency (a tool, a model endpoint). It opens after a spike of
 * failures, refuses calls while open, then lets a single probe through: success closes it,
 * failure opens it again.
 */
export class CircuitBreaker {
  private failures: number[] = [];
  private state: BreakerState = 'closed';
  private openedAt = 0;
  private probing = false;

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
      `The circuit for ${this.name} is open after ${this.policy.failureThreshold} failures within ${Math.round(this.policy.windowMs / 1000)} s; Keel will let a call through again at ${retryAt}.`,
      { context: { breaker: this.name, retryAt } },
    );
  }

  succeeded(): void {
    this.probing = false;
    this.state = 'closed';
    this.failures = [];
  }

  failed(): void {
    const now = this.now();
    this.probing = false;
    if (this.state === 'half_open') {
      this.open(now);
      return;
    }
    this.failures = this.failures.filter((at) => now - at < this.policy.windowMs);
    this.failures.push(now);
    if (this.failures.length >= this.policy.failureThreshold) this.open(now);
  }

  private open(now: number): void {
    this.state = 'open';
    this.openedAt = now;
    this.failures = [];
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
