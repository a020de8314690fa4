import * as restate from '@restatedev/restate-sdk';
import { AsyncLocalStorage } from 'node:async_hooks';
import { AttemptInterruptedError, type StepAttempt, type StepRunner } from '../../agent/steps';
import { abortableSleep } from '../../effects/retry';
import type { CheckpointStore, StepTransition } from '../../store/checkpointStore';
import { KEEL_BUDGET, sharedBudgetsOf } from './budgetObject';
import { outcomeOf, valueOf, type Outcome } from './outcome';

/**
 * The Keel runtime's view of one Restate invocation: its clock, randomness and sleep, its steps
 * and its store, each journaled so that a replay of the invocation (after the service died, or a
 * suspension) sees exactly what the first execution saw and repeats none of its effects.
 *
 * - Every store call is one `ctx.run` step: a replay reads its result from the journal and writes
 *   nothing twice. Keel's errors cross the step as values (and are thrown again, as themselves,
 *   on replay); a transient failure (a dropped database connection) is thrown, for Restate to try
 *   the step again.
 * - Every model call and tool call attempt is one `ctx.run` step (`StepRunner`), named after its
 *   idempotency key. An attempt of an unsafe tool first claims its entry in the effect ledger: a
 *   step that finds its attempt already claimed was begun by an execution that died before
 *   recording how it ended, so it does not run the tool again but reports the attempt as
 *   interrupted, and the runtime asks a person what happened, as after a crash of a local run.
 * - A reservation on a shared budget is made by that budget's virtual object (see budgetObject).
 * - The clock is the end time of the latest journaled step (and the start of the invocation, and
 *   what durable sleeps add): a replay takes the same decisions that depended on time.
 * - Inside a step (a tool running a sub-agent, say), everything is direct: steps do not nest.
 */
export class RestateJournal {
  private readonly inside = new AsyncLocalStorage<true>();
  private clock: number;
  /** Called when Restate cancels the invocation (its next await rejects with CancelledError). */
  onCancelled: () => void = () => undefined;

  private constructor(
    private readonly ctx: restate.Context,
    private readonly raw: CheckpointStore,
    startedAt: number,
  ) {
    this.clock = startedAt;
  }

  static async open(ctx: restate.Context, store: CheckpointStore): Promise<RestateJournal> {
    return new RestateJournal(ctx, store, await ctx.date.now());
  }

  get insideStep(): boolean {
    return this.inside.getStore() === true;
  }

  readonly now = (): number => (this.insideStep ? Date.now() : this.clock);

  readonly random = (): number => (this.insideStep ? Math.random() : this.ctx.rand.random());

  readonly sleep = async (ms: number, signal: AbortSignal): Promise<void> => {
    if (this.insideStep) return abortableSleep(ms, signal);
    await this.awaiting(this.ctx.sleep(ms, 'backoff'));
    this.clock += ms;
  };

  /** Moves the clock to the engine's durable time, after a wait of unknown length (for a person, say). */
  async sync(): Promise<number> {
    this.clock = Math.max(this.clock, await this.awaiting(this.ctx.date.now()));
    return this.clock;
  }

  /** Awaits a Restate operation; a cancellation of the invocation is reported first, then thrown. */
  async awaiting<T>(operation: Promise<T>): Promise<T> {
    try {
      return await operation;
    } catch (error) {
      if (error instanceof restate.CancelledError) this.onCancelled();
      throw error;
    }
  }

  /**
   * Runs `action` as one journaled step. `translate` says which errors it records as values:
   * `all` for model and tool calls (Keel's own retry policy classifies them), `final` for store
   * calls (a transient failure is left to Restate to retry).
   */
  async step<T>(name: string, action: () => Promise<T>, translate: 'all' | 'final'): Promise<T> {
    if (this.insideStep) return action();
    const outcome = await this.awaiting(this.ctx.run<Outcome>(name, () => this.inside.run(true, () => outcomeOf(action, translate))));
    this.clock = Math.max(this.clock, outcome.at);
    return valueOf<T>(outcome);
  }

  /** Model and tool calls as journaled steps; unsafe effects claimed in the store first. */
  readonly steps: StepRunner = {
    run: <T>(step: StepAttempt, execute: () => Promise<T>): Promise<T> =>
      this.step(
        `${step.kind} ${step.key} attempt ${step.attempt}`,
        async () => {
          if (step.effect === 'unsafe' && !(await this.raw.claimEffect(step.key, step.attempt))) {
            throw new AttemptInterruptedError(
              `Attempt ${step.attempt} of ${step.key} began before and never recorded how it ended: the service running it stopped.`,
            );
          }
          return execute();
        },
        'all',
      ),
  };

  /** The store, every call a journaled step; reservations on shared budgets go through their virtual objects. */
  store(): CheckpointStore {
    const overrides: Partial<Record<keyof CheckpointStore, unknown>> = {
      transition: (change: StepTransition) => this.transition(change),
      // The service owns the store; an invocation never closes it.
      close: () => Promise.resolve(),
    };
    return journaled(this.raw, this, 'store', overrides);
  }

  private async transition(change: StepTransition): Promise<void> {
    const shared = change.reserve ? sharedBudgetsOf(change.reserve) : [];
    const [first, ...rest] = shared;
    if (this.insideStep || first === undefined) {
      await this.step('store.transition', () => this.raw.transition(change), 'final');
      return;
    }
    const outcome = await this.awaiting(this.ctx.objectClient(KEEL_BUDGET, first).reserve({ change, then: rest }));
    this.clock = Math.max(this.clock, outcome.at);
    valueOf<undefined>(outcome);
  }
}

/** `target` with every method a journaled step (and its object-valued members, such as `memory`, likewise). */
function journaled<T extends object>(target: T, journal: RestateJournal, path: string, overrides: Partial<Record<string, unknown>> = {}): T {
  return new Proxy(target, {
    get(object, key) {
      if (typeof key === 'string' && key in overrides) return overrides[key];
      const value: unknown = Reflect.get(object, key, object);
      if (typeof key !== 'string' || key === 'then') return value;
      if (typeof value === 'function') {
        const method = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => journal.step(`${path}.${key}`, () => Promise.resolve(method.apply(object, args)), 'final');
      }
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return journaled(value, journal, `${path}.${key}`);
      return value;
    },
  });
}
