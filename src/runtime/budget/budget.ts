import { formatTokensExact, formatUsd } from '../../shared/format';
import { NonRetryableError } from '../effects/retry';

/** Limits on what a run (or a pool of runs) may spend. Every field is optional. */
export interface BudgetLimits {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  /** Input and output tokens together. */
  readonly tokens?: number;
  readonly usd?: number;
  /** Journal steps: model calls and tool calls. Per run only. */
  readonly steps?: number;
  /** Time spent running, pauses for approval excluded. Per run only. */
  readonly wallTimeMs?: number;
  /** The fraction of a limit at which Keel warns. Default 0.8. */
  readonly warnAt?: number;
}

/** A budget many runs draw on: a per-workspace daily allowance, a team's monthly spend... */
export interface BudgetPool {
  /** Stable id, such as `daily:2026-11-26`; runs that name the same id share it. */
  readonly id: string;
  readonly limits: Pick<BudgetLimits, 'inputTokens' | 'outputTokens' | 'tokens' | 'usd'>;
}

/** Amounts a reservation holds, or a budget has spent or holds. */
export interface Amounts {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly usd: number;
}

export const NO_AMOUNTS: Amounts = { inputTokens: 0, outputTokens: 0, usd: 0 };

export type BudgetDimension = 'inputTokens' | 'outputTokens' | 'tokens' | 'usd' | 'steps' | 'wallTimeMs';

/** A run stopped because its next step would take a budget over its limit. */
export class BudgetExceededError extends NonRetryableError {
  constructor(
    message: string,
    readonly budgetId: string,
    readonly dimension: BudgetDimension,
  ) {
    super(message, { context: { budgetId, dimension } });
  }
}

export function checkLimits(limits: BudgetLimits, where: string): BudgetLimits {
  for (const [key, value] of Object.entries(limits)) {
    if (key === 'warnAt') {
      if (typeof value !== 'number' || value <= 0 || value > 1) throw new Error(`${where}: budget warnAt must be a fraction between 0 and 1.`);
    } else if (typeof value !== 'number' || !(value >= 0)) {
      throw new Error(`${where}: budget ${key} must be a number of at least 0 (got ${JSON.stringify(value)}).`);
    }
  }
  return limits;
}

/** Budget limits with anything unset in `override` taken from `base`. */
export function mergeLimits(base: BudgetLimits | undefined, override: BudgetLimits | undefined): BudgetLimits | undefined {
  if (!base) return override;
  if (!override) return base;
  return { ...base, ...override };
}

export function hasLimits(limits: BudgetLimits | undefined): boolean {
  return limits !== undefined && Object.entries(limits).some(([key, value]) => key !== 'warnAt' && value !== undefined);
}

type Held = { readonly id: string; readonly limits: BudgetLimits; readonly spent: Amounts; readonly reserved: Amounts };

/** A budget's limits, each with what is spent and held against it and what `amounts` would add. */
function dimensions(budget: Held, amounts: Amounts) {
  const { limits, spent, reserved } = budget;
  const rows: [BudgetDimension, number | undefined, number, number, number, (value: number) => string][] = [
    ['usd', limits.usd, spent.usd, reserved.usd, amounts.usd, formatUsd],
    ['tokens', limits.tokens, spent.inputTokens + spent.outputTokens, reserved.inputTokens + reserved.outputTokens, amounts.inputTokens + amounts.outputTokens, formatTokensExact],
    ['inputTokens', limits.inputTokens, spent.inputTokens, reserved.inputTokens, amounts.inputTokens, formatTokensExact],
    ['outputTokens', limits.outputTokens, spent.outputTokens, reserved.outputTokens, amounts.outputTokens, formatTokensExact],
  ];
  return rows.flatMap(([dimension, limit, used, held, more, format]) => (limit === undefined ? [] : [{ dimension, limit, used, held, more, format }]));
}

/**
 * Whether holding `amounts` more would take a budget over one of its limits; if so, which and a
 * sentence that names it. `call` says what the call needs, given the amount (by default: that it
 * could cost up to it).
 */
export function exceeded(
  budget: Held,
  amounts: Amounts,
  call: (amount: string) => string = (amount) => `could cost up to ${amount}`,
): { dimension: BudgetDimension; message: string } | undefined {
  const name = budget.id.startsWith('run:') ? "the run's" : `the shared budget ${budget.id.replace(/^pool:/, '')}'s`;
  for (const { dimension, limit, used, held, more, format } of dimensions(budget, amounts)) {
    if (used + held + more <= limit) continue;
    const label = { usd: 'money', tokens: 'token', inputTokens: 'input-token', outputTokens: 'output-token' }[dimension as 'usd'];
    return {
      dimension,
      message:
        `The next model call ${call(format(more))}, which would take ${name} ${label} budget of ${format(limit)} over ` +
        `(spent ${format(used)}${held > 0 ? `, ${format(held)} held by calls in flight` : ''}).`,
    };
  }
  return undefined;
}

/**
 * The most output tokens a call may be allowed on a budget, and the limit that allows no more: what
 * is left of every limit once the spent, the held and the call's input are counted. `amountsFor`
 * says what the call holds with so many output tokens, each of which costs `usdPerOutputToken`.
 * Negative when the input alone does not fit; infinite when no limit bounds the output.
 */
export function outputRoom(
  budget: Held,
  amountsFor: (outputTokens: number) => Amounts,
  usdPerOutputToken: number,
): { readonly tokens: number; readonly dimension: BudgetDimension | undefined } {
  let room: { tokens: number; dimension: BudgetDimension | undefined } = { tokens: Number.POSITIVE_INFINITY, dimension: undefined };
  for (const { dimension, limit, used, held, more } of dimensions(budget, amountsFor(0))) {
    const left = limit - used - held - more;
    if (left < 0) return { tokens: -1, dimension };
    const perToken = dimension === 'usd' ? usdPerOutputToken : dimension === 'inputTokens' ? 0 : 1;
    if (perToken > 0 && Math.floor(left / perToken) < room.tokens) room = { tokens: Math.floor(left / perToken), dimension };
  }
  // Floating point may round the division up: the room is what `exceeded` accepts.
  while (room.tokens >= 0 && Number.isFinite(room.tokens) && exceeded(budget, amountsFor(room.tokens))) room.tokens -= 1;
  return room;
}

