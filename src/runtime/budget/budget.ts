import { formatTokensExact, formatUsd } from '../../shared/format';
import { NonRetryableError } from '../effects/retry';
import type { Message, ModelRequest } from '../model/model';

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

const messageBytes = new WeakMap<object, number>();

/**
 * The most input tokens a request can cost. Tokenizers work on UTF-8 bytes and every token
 * covers at least one byte, so a request's bytes (plus a few tokens of framing per message) are
 * an upper bound whatever the model's tokenizer: reserving it means a budget is never overspent.
 */
export function maxInputTokens(request: ModelRequest): number {
  let total = 16 + Buffer.byteLength(JSON.stringify(request.tools));
  for (const message of request.messages) total += bytesOf(message) + 8;
  return total;
}

function bytesOf(message: Message): number {
  let bytes = messageBytes.get(message);
  if (bytes === undefined) {
    bytes = Buffer.byteLength(JSON.stringify(message));
    messageBytes.set(message, bytes);
  }
  return bytes;
}

/**
 * Whether holding `amounts` more would take a budget over one of its limits; if so, which and a
 * sentence that names it.
 */
export function exceeded(
  budget: { readonly id: string; readonly limits: BudgetLimits; readonly spent: Amounts; readonly reserved: Amounts },
  amounts: Amounts,
): { dimension: BudgetDimension; message: string } | undefined {
  const { limits, spent, reserved } = budget;
  const name = budget.id.startsWith('run:') ? 'the run\'s' : `the shared budget ${budget.id.replace(/^pool:/, '')}'s`;
  const checks: [BudgetDimension, number | undefined, number, number, number, (value: number) => string][] = [
    ['usd', limits.usd, spent.usd, reserved.usd, amounts.usd, formatUsd],
    ['tokens', limits.tokens, spent.inputTokens + spent.outputTokens, reserved.inputTokens + reserved.outputTokens, amounts.inputTokens + amounts.outputTokens, formatTokensExact],
    ['inputTokens', limits.inputTokens, spent.inputTokens, reserved.inputTokens, amounts.inputTokens, formatTokensExact],
    ['outputTokens', limits.outputTokens, spent.outputTokens, reserved.outputTokens, amounts.outputTokens, formatTokensExact],
  ];
  for (const [dimension, limit, used, held, more, format] of checks) {
    if (limit === undefined || used + held + more <= limit) continue;
    const label = { usd: 'money', tokens: 'token', inputTokens: 'input-token', outputTokens: 'output-token' }[dimension as 'usd'];
    return {
      dimension,
      message:
        `The next model call could cost up to ${format(more)}, which would take ${name} ${label} budget of ${format(limit)} over ` +
        `(spent ${format(used)}${held > 0 ? `, ${format(held)} held by calls in flight` : ''}).`,
    };
  }
  return undefined;
}
