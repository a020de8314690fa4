import { z } from 'zod';

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

const always = z
  .object({ arg: z.string().min(1), min: z.number().optional(), max: z.number().optional() })
  .strict()
  .refine((band) => band.min !== undefined || band.max !== undefined, 'an always-sample band needs min, max or both');

export const reviewSchema = z
  .object({
    sample: z.array(
      z
        .object({ tool: z.string().min(1).optional(), agent: z.string().min(1).optional(), rate: z.number().min(0).max(1), always: z.array(always).optional() })
        .strict()
        .refine((rule) => rule.tool !== undefined || rule.agent !== undefined, 'a sampling rule names a tool, an agent, or both'),
    ),
  })
  .partial()
  .strict();
