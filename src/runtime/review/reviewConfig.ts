/**
 * Review sampling as keel.config.ts declares it: which tool calls that ran without a person's
 * approval are queued for a person to review after the fact. See docs/review.md.
 */

/** A numeric argument in a band: calls with `arg` between `min` and `max` (inclusive) are always sampled. */
export interface AlwaysSample {
  /** The argument's path in the call's arguments, such as `amount` or `payment.total`. */
  readonly arg: string;
  readonly min?: number;
  readonly max?: number;
}

interface SamplingBase {
  /** The share of calls sampled, from 0 to 1. */
  readonly rate: number;
  /** Conditions under which a call is sampled whatever the rate. */
  readonly always?: readonly AlwaysSample[];
}

/** A rule for one tool (whatever its effect), or for one agent's calls with side effects (`*` for every agent). */
export type SamplingRule = (SamplingBase & { readonly tool: string; readonly agent?: string }) | (SamplingBase & { readonly agent: string; readonly tool?: undefined });

export interface ReviewConfig {
  /** The first rule that matches a call decides; calls no rule matches are not sampled. */
  readonly sample?: readonly SamplingRule[];
}
