import type { RunEvent } from '../agent/events';
import type { Model, ModelRequest } from '../model/model';
import type { BudgetRecord, CheckpointStore, NewReservation, RunRecord } from '../store/checkpointStore';
import {
  BudgetExceededError,
  hasLimits,
  maxInputTokens,
  type Amounts,
  type BudgetDimension,
  type BudgetLimits,
  type BudgetPool,
} from './budget';
import { costOf, priceOf, type Price, type PriceTable } from './prices';

const DEFAULT_WARN_AT = 0.8;

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
    return new RunBudget(store, run, chain, prices, now, emit);
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
   * The worst case of a model call, to hold on every budget before it is made: the request's
   * most possible input tokens and the call's output limit. Undefined when nothing is budgeted.
   */
  reservation(id: string, seq: number, model: Model, request: ModelRequest & { maxTokens: number }): NewReservation | undefined {
    if (this.limits.size === 0) return undefined;
    const price = this.priceOf(model);
    const inputTokens = maxInputTokens(request);
    const moneyLimited = [...this.limits].find(([, limits]) => limits.usd !== undefined)?.[0];
    if (!price && moneyLimited) {
      throw new BudgetExceededError(
        `Keel does not know the price of ${model.provider}:${model.name}, so it cannot keep this run within its money budget: add the model to the keel.prices setting (or the agent's prices).`,
        moneyLimited,
        'usd',
      );
    }
    return {
      id,
      runId: this.run.id,
      seq,
      model: `${model.provider}:${model.name}`,
      budgetIds: this.chain,
      amounts: { inputTokens, outputTokens: request.maxTokens, usd: price ? costOf(price, inputTokens, request.maxTokens) : 0 },
      at: this.now(),
    };
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
  async warnIfNear(): Promise<void> {
    if (this.limits.size === 0) return;
    for (const budget of await this.store.getBudgets(this.chain)) {
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
