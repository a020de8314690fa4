/** Gauge math: where the spent and the reserved parts of a bar end, and how close to its limit it is. No DOM here. */

/** The fraction of a limit at which Keel warns, unless a budget says otherwise (as the runtime does). */
export const DEFAULT_WARN_AT = 0.8;

export interface GaugeInput {
  readonly spent: number;
  /** Held by calls in flight: it may be spent yet. */
  readonly reserved: number;
  /** Undefined when nothing limits it. */
  readonly limit: number | undefined;
  readonly warnAt?: number;
}

/**
 * - `none`: no limit;
 * - `ok`: below the warning line;
 * - `warn`: spent, or spent and held together, at or past the warning line;
 * - `over`: the limit is reached (a run stops there).
 */
export type GaugeLevel = 'none' | 'ok' | 'warn' | 'over';

export interface Gauge {
  /** Of the bar's width, 0 to 1: the spent part starts at 0. */
  readonly spentFraction: number;
  /** Of the bar's width: the reserved part, drawn right after the spent part; never past the end. */
  readonly reservedFraction: number;
  /** Where the warning line sits, 0 to 1; null without a limit. */
  readonly warnFraction: number | null;
  /** Spent over the limit (may pass 1 for steps and time); null without a limit. */
  readonly share: number | null;
  readonly level: GaugeLevel;
}

export function gauge(input: GaugeInput): Gauge {
  const spent = Math.max(0, input.spent);
  const reserved = Math.max(0, input.reserved);
  const { limit } = input;
  if (limit === undefined || !Number.isFinite(limit)) {
    return { spentFraction: 0, reservedFraction: 0, warnFraction: null, share: null, level: 'none' };
  }
  const warnAt = clamp(input.warnAt ?? DEFAULT_WARN_AT);
  if (limit <= 0) {
    // Nothing may be spent: the limit is reached from the start.
    return { spentFraction: spent > 0 ? 1 : 0, reservedFraction: 0, warnFraction: warnAt, share: spent > 0 ? Infinity : 1, level: 'over' };
  }
  const spentFraction = clamp(spent / limit);
  const reservedFraction = Math.min(1 - spentFraction, reserved / limit);
  const share = spent / limit;
  const level: GaugeLevel = share >= 1 ? 'over' : share >= warnAt || (spent + reserved) / limit >= warnAt ? 'warn' : 'ok';
  return { spentFraction, reservedFraction, warnFraction: warnAt, share, level };
}

function clamp(value: number): number {
  return Math.min(1, Math.max(0, value));
}
