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

/** The window is counted in this many buckets: recording and reading a breaker cost the same however busy it is. */
const BUCKETS = 12;
/** How often, at most, a breaker shares its counts and reads the others' when nothing forces it to. */
const SHARE_EVERY_MS = 1_000;

export type BreakerState = 'closed' | 'open' | 'half_open';

/** A circuit that just opened: which, after what, and when it lets a call through again. */
export interface CircuitOpened {
  readonly name: string;
  readonly reason: string;
  readonly retryAt: number;
}

/** Raised instead of calling a tool or model whose circuit is open; never retried. */
export class CircuitOpenError extends KeelError {}

/** Outcomes of calls to one dependency added to its shared count, and a change of its circuit. */
export interface BreakerUpdate {
  readonly name: string;
  /** Where the outcomes belong: the start of their bucket, in ms since the epoch. */
  readonly bucket: number;
  readonly successes: number;
  readonly failures: number;
  /** The start of the window: buckets before it no longer count. */
  readonly since: number;
  /** Opens the circuit until then, counting afresh, and why (`10 of 12 calls failed within 60 s`). */
  readonly openUntil?: number;
  readonly reason?: string;
  /** Closes the circuit (its probe succeeded), counting afresh from now. */
  readonly close?: boolean;
  readonly at: number;
}

/** What every process calling a dependency counted in the window, and until when its circuit is open. */
export interface BreakerTally {
  readonly successes: number;
  readonly failures: number;
  readonly openUntil: number | null;
  /** Why the circuit opened, as the process that opened it said. */
  readonly reason: string | null;
}

/** Where breakers of several processes share their counts: the store (see CheckpointStore.tallyBreaker). */
export interface BreakerLedger {
  tallyBreaker(update: BreakerUpdate): Promise<BreakerTally>;
}

/**
 * A circuit breaker for one dependency (a tool, a model endpoint). It opens on a spike of
 * failures, refuses calls while open, then lets a single probe through: success closes it,
 * failure opens it again. Calls are counted in buckets of the window, so each call costs the same
 * however many came before. With a ledger, the counts and the circuit are shared with every
 * process that calls the dependency: a spike spread over many processes opens it for all.
 */
export class CircuitBreaker {
  private readonly bucketMs: number;
  /** Local counts by bucket start, the window's worth (a ring of BUCKETS). */
  private readonly buckets: { start: number; successes: number; failures: number }[] = [];
  /** What the other processes had counted, as of the last share (this process's shared counts excluded). */
  private others = { successes: 0, failures: 0 };
  /** Counts not shared yet, by bucket. */
  private unshared: { bucket: number; successes: number; failures: number } | undefined;
  private state: BreakerState = 'closed';
  private openUntil = 0;
  private probing = false;
  private lastSpike = '';
  private lastShared = -Infinity;
  private sharing: Promise<void> | undefined;
  /** A change of the circuit not shared yet. */
  private change: { openUntil: number; reason: string } | { close: true } | undefined;

  constructor(
    readonly name: string,
    private readonly policy: BreakerPolicy,
    private readonly now: () => number,
    private readonly ledger?: BreakerLedger,
    private readonly onOpen?: (opened: CircuitOpened) => void,
  ) {
    this.bucketMs = Math.max(1, Math.ceil(policy.windowMs / BUCKETS));
  }

  get current(): BreakerState {
    if (this.state === 'open' && this.now() >= this.openUntil) return 'half_open';
    return this.state;
  }

  /**
   * Brings this breaker up to date with what other processes counted, when its view is stale (it
   * is new here, or has not shared for a second): call it before `admit`.
   */
  async refresh(): Promise<void> {
    this.shareSoon();
    await this.settled();
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
    const retryAt = new Date(this.openUntil).toISOString();
    throw new CircuitOpenError(`The circuit for ${this.name} is open after ${this.lastSpike}; Keel will let a call through again at ${retryAt}.`, {
      context: { breaker: this.name, retryAt },
    });
  }

  succeeded(): void {
    if (this.state === 'half_open') {
      this.state = 'closed';
      this.clear();
      this.change = { close: true };
    }
    this.probing = false;
    this.record(false);
    this.shareSoon();
  }

  failed(): void {
    this.probing = false;
    if (this.state === 'half_open') {
      this.lastSpike = 'its probe call failed';
      this.open();
    } else {
      this.record(true);
      this.openOnSpike();
    }
    this.share();
  }

  /** Waits for counts being shared to reach the ledger (for tests and orderly shutdowns). */
  async settled(): Promise<void> {
    while (this.sharing) await this.sharing;
  }

  private openOnSpike(): void {
    if (this.state !== 'closed') return;
    const { calls, failures } = this.counts();
    if (calls >= this.policy.minimumCalls && failures / calls >= this.policy.failureRate) {
      this.lastSpike = `${failures} of ${calls} calls failed within ${Math.round(this.policy.windowMs / 1000)} s`;
      this.open();
    }
  }

  /** Calls in the window, here and (as last shared) in other processes. */
  private counts(): { calls: number; failures: number } {
    const local = this.localCounts();
    const successes = local.successes + this.others.successes;
    const failures = local.failures + this.others.failures;
    return { calls: successes + failures, failures };
  }

  /** Calls in the window counted by this process. */
  private localCounts(): { successes: number; failures: number } {
    const since = this.now() - this.policy.windowMs;
    let successes = 0;
    let failures = 0;
    for (const bucket of this.buckets) {
      if (!bucket || bucket.start + this.bucketMs <= since) continue;
      successes += bucket.successes;
      failures += bucket.failures;
    }
    return { successes, failures };
  }

  private record(failed: boolean): void {
    const start = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    const slot = Math.floor(start / this.bucketMs) % BUCKETS;
    let bucket = this.buckets[slot];
    if (!bucket || bucket.start !== start) {
      bucket = { start, successes: 0, failures: 0 };
      this.buckets[slot] = bucket;
    }
    if (failed) bucket.failures += 1;
    else bucket.successes += 1;
    if (!this.ledger) return;
    if (this.unshared && this.unshared.bucket !== start) this.share();
    this.unshared ??= { bucket: start, successes: 0, failures: 0 };
    if (failed) this.unshared.failures += 1;
    else this.unshared.successes += 1;
  }

  private open(): void {
    this.state = 'open';
    this.openUntil = this.now() + this.policy.cooldownMs;
    this.clear();
    this.change = { openUntil: this.openUntil, reason: this.lastSpike };
    this.onOpen?.({ name: this.name, reason: this.lastSpike, retryAt: this.openUntil });
  }

  private clear(): void {
    this.buckets.length = 0;
    this.others = { successes: 0, failures: 0 };
    this.unshared = undefined;
  }

  private shareSoon(): void {
    if (this.ledger && this.now() - this.lastShared >= SHARE_EVERY_MS) this.share();
  }

  /** Sends what this process counted (and a change of the circuit) to the ledger, and takes in what the others counted. */
  private share(): void {
    const ledger = this.ledger;
    if (!ledger || this.sharing) return;
    this.lastShared = this.now();
    const unshared = this.unshared;
    const change = this.change;
    this.unshared = undefined;
    this.change = undefined;
    const at = this.now();
    const update: BreakerUpdate = {
      name: this.name,
      bucket: unshared?.bucket ?? Math.floor(at / this.bucketMs) * this.bucketMs,
      successes: unshared?.successes ?? 0,
      failures: unshared?.failures ?? 0,
      since: at - this.policy.windowMs,
      at,
      ...(change && 'openUntil' in change ? { openUntil: change.openUntil, reason: change.reason } : {}),
      ...(change && 'close' in change ? { close: true } : {}),
    };
    // Everything counted here so far is in this update or was in an earlier one: the rest of the tally is the others'.
    const sent = this.localCounts();
    this.sharing = ledger
      .tallyBreaker(update)
      .then(
        (tally) => this.takeIn(tally, sent),
        // The ledger is out of reach (a database that went away): this process goes on counting alone.
        () => undefined,
      )
      .finally(() => {
        this.sharing = undefined;
        if (this.unshared?.failures || this.change) this.share();
      });
  }

  private takeIn(tally: BreakerTally, sent: { successes: number; failures: number }): void {
    this.others = { successes: Math.max(0, tally.successes - sent.successes), failures: Math.max(0, tally.failures - sent.failures) };
    if (tally.openUntil !== null && tally.openUntil > this.now() && (this.state === 'closed' || tally.openUntil > this.openUntil)) {
      this.state = 'open';
      this.openUntil = tally.openUntil;
      this.lastSpike = tally.reason ?? 'failures counted by other processes';
      return;
    }
    this.openOnSpike();
  }
}

/** The breakers of one runtime process, one per dependency name; with a ledger, shared with other processes. */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly policy: BreakerPolicy = DEFAULT_BREAKER,
    private readonly now: () => number = Date.now,
    private readonly ledger?: BreakerLedger,
    /** Told of every circuit that opens in this process (the host raises an alert). */
    private readonly onOpen?: (opened: CircuitOpened) => void,
  ) {}

  for(name: string): CircuitBreaker {
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = new CircuitBreaker(name, this.policy, this.now, this.ledger, this.onOpen);
      this.breakers.set(name, breaker);
    }
    return breaker;
  }

  /** Waits until every breaker's counts have reached the ledger. */
  async settled(): Promise<void> {
    await Promise.all([...this.breakers.values()].map((breaker) => breaker.settled()));
  }
}
