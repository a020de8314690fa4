import { isOwnerAlive as processIsAlive } from '../agent/owner';
import { abortableSleep, backoffDelay, classifyError, type RetryPolicy } from '../effects/retry';
import { describeError } from '../errors';
import type { AlertChannelConfig } from './alertConfig';
import { canDeliver, send, type EditorSink } from './channels';
import type { AlertOutbox, ClaimedDelivery, DeliveryOutcome } from './outbox';

/**
 * Delivers what the outbox holds: claims due deliveries (a lease, so that two processes never send
 * one at once), sends each, and records the outcome. A failure worth another attempt is tried again
 * after a delay of exponential backoff with full jitter (effects/retry), at least as long as a
 * Retry-After asks; the last attempt's failure, or one that cannot succeed, fails the delivery.
 */

/** Eight attempts over about ten minutes at most: long enough for a receiver's restart, short enough to be told. */
export const ALERT_RETRY: RetryPolicy = { attempts: 8, baseMs: 1_000, capMs: 300_000, maxRetryAfterMs: 3_600_000, nonRetryable: [] };

/** An editor alert older than this is not shown any more when a window opens: it fails as stale. */
export const EDITOR_ALERT_MAX_AGE_MS = 86_400_000;

export interface DispatcherOptions {
  readonly channels: () => Readonly<Record<string, AlertChannelConfig>>;
  readonly owner: string;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly isOwnerAlive?: (owner: string) => boolean;
  readonly policy?: RetryPolicy;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: (line: string) => void;
  /** How long a claim holds a delivery, and how long one send may take. */
  readonly leaseMs?: number;
}

export class AlertDispatcher {
  private editor: EditorSink | undefined;
  private running: Promise<number> | undefined;
  private again = false;
  private readonly now: () => number;

  constructor(
    private readonly outbox: AlertOutbox,
    private readonly options: DispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Editor alerts are delivered by this process from now on, to `sink`; undefined stops that. */
  attachEditor(sink: EditorSink | undefined): void {
    this.editor = sink;
  }

  /**
   * Sends every delivery that is due and that this process can make; resolves with how many were
   * sent. Calls made while one is under way run once more after it, so nothing raised meanwhile waits.
   */
  deliverDue(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<number> => {
      let sent = 0;
      do {
        this.again = false;
        sent += await this.round();
      } while (this.again);
      return sent;
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Delivers until nothing this process can send is due, waiting out retry delays, for at most
   * `deadlineMs`: what a command does before it exits. Resolves with how many were sent.
   */
  async drain(deadlineMs: number): Promise<number> {
    const until = this.now() + deadlineMs;
    let sent = 0;
    for (;;) {
      sent += await this.deliverDue();
      const next = await this.nextDue(until);
      if (next === undefined) return sent;
      await abortableSleep(Math.max(0, next - this.now()), new AbortController().signal);
    }
  }

  /** When the next delivery this process could make is due, if before `until`. */
  private async nextDue(until: number): Promise<number | undefined> {
    const pending = await this.outbox.list({ status: 'pending', limit: 200 });
    const context = { channels: this.options.channels(), editor: this.editor };
    const times = pending
      .flatMap((alert) => alert.deliveries)
      .filter((delivery) => delivery.status === 'pending' && canDeliver(delivery.target, context))
      .map((delivery) => Math.max(delivery.nextAttemptAt, delivery.leaseUntil ?? 0));
    const next = times.length === 0 ? undefined : Math.min(...times);
    return next !== undefined && next < until ? next : undefined;
  }

  private async round(): Promise<number> {
    const channels = this.options.channels();
    const claimed = await this.outbox.claim({
      owner: this.options.owner,
      now: this.now(),
      leaseMs: this.options.leaseMs ?? 60_000,
      limit: 25,
      targets: (target) => canDeliver(target, { channels, editor: this.editor }),
      isOwnerAlive: this.options.isOwnerAlive ?? processIsAlive,
    });
    const outcomes = await Promise.all(claimed.map((item) => this.attempt(item, channels)));
    return outcomes.filter((outcome) => outcome.sent).length;
  }

  private async attempt({ alert, delivery }: ClaimedDelivery, channels: Readonly<Record<string, AlertChannelConfig>>): Promise<DeliveryOutcome> {
    const policy = this.options.policy ?? ALERT_RETRY;
    let outcome: DeliveryOutcome;
    if (channels[delivery.target]?.type === 'editor' && this.now() - alert.at > EDITOR_ALERT_MAX_AGE_MS) {
      outcome = { sent: false, at: this.now(), error: 'No editor window opened within a day of the alert; it was not shown.', retryAt: null };
    } else {
      try {
        await send(alert, delivery.target, { channels, editor: this.editor, env: this.options.env ?? process.env, timeoutMs: Math.min(30_000, (this.options.leaseMs ?? 60_000) / 2) });
        outcome = { sent: true, at: this.now() };
      } catch (error) {
        const classification = classifyError(error, policy);
        const retry = classification.class === 'retry' && delivery.attempts < policy.attempts;
        const at = this.now();
        outcome = {
          sent: false,
          at,
          error: describeError(error),
          retryAt: retry ? at + backoffDelay(delivery.attempts - 1, policy, this.options.random ?? Math.random, classification.retryAfterMs) : null,
        };
      }
    }
    const recorded = await this.outbox.settle(alert.id, delivery.target, this.options.owner, outcome);
    if (!outcome.sent && recorded) {
      this.options.log?.(
        `alert ${alert.id} to ${delivery.target}: ${outcome.error}${outcome.retryAt === null ? ' (given up)' : ` (trying again at ${new Date(outcome.retryAt).toISOString()})`}`,
      );
    }
    return outcome;
  }
}
