import type { RunEvent } from '../agent/events';
import type { ReservationClose } from '../agent/stepJournal';
import type { Model, ModelRequest, ModelResponse, Usage } from '../model/model';
import { countInputTokens } from '../model/tokens';
import type { BudgetRecord, CheckpointStore, NewReservation, RunRecord } from '../store/checkpointStore';
import {
  BudgetExceededError,
  NO_AMOUNTS,
  exceeded,
  hasLimits,
  outputRoom,
  type Amounts,
  type BudgetDimension,
  type BudgetLimits,
  type BudgetPool,
} from './budget';
import { costOf, priceOf, type Price, type PriceTable } from './prices';
import { settledOn, untilSettled } from './settlements';

const DEFAULT_WARN_AT = 0.8;
/**
 * The fewest output tokens a budgeted call is sent off with (or its agent's `maxOutputTokens`, if
 * lower): an answer given less room would likely be cut short, so the call waits or stops instead.
 */
export const MIN_OUTPUT_TOKENS = 256;
/** How long a call waits for calls in flight to settle when its budgets have no room for it. */
export const DEFAULT_BUDGET_WAIT_MS = 30_000;
/** How soon a waiting call looks at its budgets again (doubling up to LONGEST_POLL_MS): settlements in other processes wake nobody. */
const FIRST_POLL_MS = 20;
const LONGEST_POLL_MS = 500;

/** A model call's hold on its budgets, and the output limit it sends. */
export interface ReservedCall {
  readonly reservation: NewReservation;
  readonly maxTokens: number;
  /** The budget and limit that left room for fewer output tokens than the agent's own limit, if one did. */
  readonly limitedBy: { readonly budgetId: string; readonly dimension: BudgetDimension } | undefined;
}

export type ProviderOverrun = Extract<RunEvent, { type: 'provider_overrun' }>;

/** The budgets of a run, as its execution spends them: reservations, settlements, limits, warnings. */
export class RunBudget {
  private readonly warned = new Set<string>();
  private readonly startedAt: number;

  private constructor(
    private readonly store: CheckpointStore,
    private readonly run: RunRecord,
    /** Budgets every model call of this run reserves against (its own, its parents', shared pools), with their limits. */
    private readonly limits: ReadonlyMap<string, BudgetLimits>,
    private readonly prices: readonly PriceTable[],
    private readonly now: () => number,
    private readonly emit: (event: RunEvent) => void,
    /** How long a call waits for room (see `reserve`). */
    private readonly waitMs: number,
  ) {
    this.startedAt = now();
  }

  /**
   * The budgets a run draws on: its own when it has token or money limits, those of the runs that
   * started it as a sub-agent, and the shared pools. Creates the ones that do not exist yet.
   */
  static async forRun(
    store: CheckpointStore,
    run: RunRecord,
    pools: readonly BudgetPool[],
    prices: readonly PriceTable[],
    now: () => number,
    emit: (event: RunEvent) => void,
    waitMs: number = DEFAULT_BUDGET_WAIT_MS,
  ): Promise<RunBudget> {
    const chain = new Map<string, BudgetLimits>();
    for (let current: RunRecord | undefined = run; current; current = current.parentRunId ? await store.getRun(current.parentRunId) : undefined) {
      const limits = current.budget;
      if (limits && hasSharedLimits(limits)) {
        const id = `run:${current.id}`;
        await store.ensureBudget({ id, kind: 'run', limits, at: now() });
        chain.set(id, limits);
      }
    }
    for (const pool of pools) {
      const id = `pool:${pool.id}`;
      await store.ensureBudget({ id, kind: 'pool', limits: pool.limits, at: now() });
      chain.set(id, pool.limits);
    }
    return new RunBudget(store, run, chain, prices, now, emit, waitMs);
  }

  get chain(): readonly string[] {
    return [...this.limits.keys()];
  }

  priceOf(model: Model): Price | undefined {
    return priceOf(model.provider, model.name, this.prices);
  }

  /** Throws when the run's own step or time limit is reached: checked before every step. */
  checkRunLimits(stepsSoFar: number): void {
    const limits = this.run.budget;
    if (!limits) return;
    if (limits.steps !== undefined && stepsSoFar >= limits.steps) {
      throw new BudgetExceededError(`The run reached its step budget of ${limits.steps} steps.`, `run:${this.run.id}`, 'steps');
    }
    const active = this.run.activeMs + (this.now() - this.startedAt);
    if (limits.wallTimeMs !== undefined && active >= limits.wallTimeMs) {
      throw new BudgetExceededError(
        `The run reached its time budget of ${Math.round(limits.wallTimeMs / 1000)} s (it has run for ${Math.round(active / 1000)} s).`,
        `run:${this.run.id}`,
        'wallTimeMs',
      );
    }
  }

  /**
   * Holds what a model call may spend on every budget the run draws on, before it is made: its
   * input, counted (see model/tokens.ts), and as many output tokens as the budgets leave room for,
   * up to the agent's limit: that is the output limit the call sends (`maxTokens`), so a call that
   * keeps to it cannot take a budget over. With room for fewer than MIN_OUTPUT_TOKENS, the call
   * waits, up to `waitMs`, for calls in flight to settle (they hold more than they will likely
   * spend), then stops the run with BudgetExceededError; at once when nothing held could make room.
   * Undefined when nothing is budgeted.
   */
  async reserve(id: string, seq: number, model: Model, request: ModelRequest & { maxTokens: number }, signal: AbortSignal): Promise<ReservedCall | undefined> {
    if (this.limits.size === 0) return undefined;
    const price = this.priceOf(model);
    const moneyLimited = [...this.limits].find(([, limits]) => limits.usd !== undefined)?.[0];
    if (!price && moneyLimited) {
      throw new BudgetExceededError(
        `Keel does not know the price of ${model.provider}:${model.name}, so it cannot keep this run within its money budget: give its price in USD per million tokens in KEEL_PRICES, in \`prices\` of keel.config.ts, in the agent's \`prices\`, or in the editor's keel.prices setting.`,
        moneyLimited,
        'usd',
      );
    }
    const inputTokens = await countInputTokens(model, request);
    const amountsFor = (outputTokens: number): Amounts => ({ inputTokens, outputTokens, usd: price ? costOf(price, inputTokens, outputTokens) : 0 });
    const usdPerOutputToken = price ? price.outputPerMTok / 1_000_000 : 0;
    const least = Math.min(request.maxTokens, MIN_OUTPUT_TOKENS);
    const needs = (amount: string) => `needs at least ${amount} (its input and ${least.toLocaleString('en-US')} output tokens)`;
    const started = Date.now();
    for (let poll = FIRST_POLL_MS; ; poll = Math.min(poll * 2, LONGEST_POLL_MS)) {
      const budgets = await this.store.getBudgets(this.chain);
      const rooms = budgets.map((budget) => ({ budgetId: budget.id, ...outputRoom(budget, amountsFor, usdPerOutputToken) }));
      const tightest = rooms.reduce<(typeof rooms)[number] | undefined>((least, room) => (least && least.tokens <= room.tokens ? least : room), undefined);
      const room = Math.min(request.maxTokens, tightest?.tokens ?? Number.POSITIVE_INFINITY);
      const waited = Date.now() - started;
      if (room >= least) {
        const reservation: NewReservation = { id, runId: this.run.id, seq, model: `${model.provider}:${model.name}`, budgetIds: this.chain, amounts: amountsFor(room), at: this.now() };
        const limitedBy = tightest?.dimension && room < request.maxTokens ? { budgetId: tightest.budgetId, dimension: tightest.dimension } : undefined;
        try {
          await this.store.transition({ reserve: reservation });
          return { reservation, maxTokens: room, limitedBy };
        } catch (error) {
          if (!(error instanceof BudgetExceededError)) throw error;
          // Another call (maybe in another process) took the room between the look and the hold: look again.
          if (waited < this.waitMs) {
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          throw new BudgetExceededError(`${error.message}${waitedFor(waited)}`, error.budgetId, error.dimension);
        }
      }
      const blocked = budgets.flatMap((budget) => {
        const over = exceeded(budget, amountsFor(least), needs);
        return over ? [{ budget, over, hopeless: exceeded({ ...budget, reserved: NO_AMOUNTS }, amountsFor(least)) !== undefined }] : [];
      });
      const stop = blocked.find((entry) => entry.hopeless) ?? (waited >= this.waitMs ? blocked[0] : undefined);
      if (stop) throw new BudgetExceededError(`${stop.over.message}${stop.hopeless ? '' : waitedFor(waited)}`, stop.budget.id, stop.over.dimension);
      await untilSettled(this.chain, Math.min(poll, this.waitMs - waited), signal);
    }
  }

  /**
   * How a call that used `usage` settles its reservation, and the provider's overrun when it
   * reported more than the call held: more output than the `maxTokens` it was sent, or more input
   * than was counted. What it reported is what is spent, even past a limit.
   */
  settle(model: Model, call: ReservedCall, usage: Usage): { readonly close: ReservationClose; readonly overrun: ProviderOverrun | undefined } {
    const { reservation } = call;
    const close = { id: reservation.id, actual: this.settlement(model, usage.inputTokens, usage.outputTokens), at: this.now() };
    const reserved = { inputTokens: reservation.amounts.inputTokens, outputTokens: reservation.amounts.outputTokens };
    const over = usage.outputTokens > reserved.outputTokens || usage.inputTokens > reserved.inputTokens;
    return { close, overrun: over ? { type: 'provider_overrun', runId: this.run.id, seq: reservation.seq, model: reservation.model, reserved, reported: { ...usage }, overLimit: [] } : undefined };
  }

  /**
   * The stop of a run whose answer was cut off at the output limit its budgets set, below the
   * agent's own (see `reserve`): such an answer is no answer. Undefined for any other answer.
   */
  cutShort(call: ReservedCall, response: ModelResponse): BudgetExceededError | undefined {
    if (!call.limitedBy || response.finishReason !== 'length') return undefined;
    const { budgetId, dimension } = call.limitedBy;
    const name = budgetId === `run:${this.run.id}` ? "the run's budget" : budgetId.startsWith('run:') ? "a parent run's budget" : `the shared budget ${budgetId.replace(/^pool:/, '')}`;
    return new BudgetExceededError(
      `The model's answer was cut off at ${call.maxTokens.toLocaleString('en-US')} output tokens, all that ${name} had room for.`,
      budgetId,
      dimension,
    );
  }

  /**
   * After a call's reservation closed (settled or released) and was written: wakes the calls
   * waiting for room, reports an overrun with the budgets it took over their limits, and warns of
   * budgets near theirs.
   */
  async settled(overrun: ProviderOverrun | undefined): Promise<void> {
    if (this.limits.size === 0) return;
    settledOn(this.chain);
    const budgets = await this.store.getBudgets(this.chain);
    if (overrun) this.emit({ ...overrun, overLimit: budgets.filter((budget) => exceeded({ ...budget, reserved: NO_AMOUNTS }, NO_AMOUNTS)).map((budget) => budget.id) });
    this.warnIfNear(budgets);
  }

  /** What a call that used `usage` cost; null when the model's price is unknown. */
  costOf(model: Model, inputTokens: number, outputTokens: number): number | null {
    const price = this.priceOf(model);
    return price ? costOf(price, inputTokens, outputTokens) : null;
  }

  settlement(model: Model, inputTokens: number, outputTokens: number): Amounts {
    return { inputTokens, outputTokens, usd: this.costOf(model, inputTokens, outputTokens) ?? 0 };
  }

  /** Warns, once per budget and kind of limit, when spending crosses its warning fraction. */
  private warnIfNear(budgets: readonly BudgetRecord[]): void {
    for (const budget of budgets) {
      for (const [dimension, spent, limit] of usage(budget)) {
        const fraction = limit === 0 ? 1 : spent / limit;
        const key = `${budget.id}:${dimension}`;
        if (fraction < (budget.limits.warnAt ?? DEFAULT_WARN_AT) || this.warned.has(key)) continue;
        this.warned.add(key);
        this.emit({ type: 'budget_warning', runId: this.run.id, budgetId: budget.id, dimension, spent, limit });
      }
    }
  }
}

function waitedFor(ms: number): string {
  if (ms === 0) return '';
  return ` It waited ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`} for calls in flight to settle.`;
}

/** Limits enforced by reservations in the store (steps and time are checked in the run itself). */
function hasSharedLimits(limits: BudgetLimits): boolean {
  return hasLimits({ inputTokens: limits.inputTokens, outputTokens: limits.outputTokens, tokens: limits.tokens, usd: limits.usd });
}

function usage(budget: BudgetRecord): [BudgetDimension, number, number][] {
  const { limits, spent } = budget;
  const rows: [BudgetDimension, number, number | undefined][] = [
    ['usd', spent.usd, limits.usd],
    ['tokens', spent.inputTokens + spent.outputTokens, limits.tokens],
    ['inputTokens', spent.inputTokens, limits.inputTokens],
    ['outputTokens', spent.outputTokens, limits.outputTokens],
  ];
  return rows.filter((row): row is [BudgetDimension, number, number] => row[2] !== undefined);
}
