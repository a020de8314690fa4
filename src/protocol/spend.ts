import type { Budget, Reservation, Run } from './records';

/** What a run spent and may still spend, as the budget meter and the status bar show it (`getSpend`). */

/** Tokens and money one run spent on one model, summed from the model steps of its journal. */
export interface ModelSpend {
  readonly runId: string;
  /** `provider:model`, as the journal names the step. */
  readonly model: string;
  /** Model calls that completed. */
  readonly calls: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** What the priced calls cost, in USD. */
  readonly usd: number;
  /** Calls of a model whose price Keel does not know: their cost is missing from `usd`. */
  readonly unpricedCalls: number;
}

export interface SpendReport {
  /** When the runtime process read it, in ms since the epoch. */
  readonly at: number;
  readonly run: Run;
  /** The runs it started as sub-agents, the runs those started, and so on: each after its parent. */
  readonly subRuns: readonly Run[];
  /**
   * When the run's current execution began, while it runs; its active time is then `activeMs`
   * plus the time since. Null when it is not running, or running elsewhere since an unknown time.
   */
  readonly activeSince: number | null;
  /**
   * The budgets its model calls draw on: its own (`run:<id>`), those of the runs above it, and
   * the shared pools (`pool:<id>`). Only budgets that exist: a run without token or money limits has none.
   */
  readonly budgets: readonly Budget[];
  /** Reservations of the run and its sub-agent runs still held by model calls in flight, oldest first. */
  readonly held: readonly Reservation[];
  /** Their latest settled or released reservations, newest first (at most RECENT_RESERVATIONS). */
  readonly recent: readonly Reservation[];
  /** Per run and model: what the run and its sub-agent runs spent. */
  readonly models: readonly ModelSpend[];
}

export const RECENT_RESERVATIONS = 8;
