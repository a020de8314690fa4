import { numberAt } from './sampling';
import type { ReviewRecord } from './reviewStore';

/**
 * What the verdicts say, per tool: the share of sampled calls reviewers disagreed with (they
 * should not have gone ahead on their own), with a Wilson score interval, and a threshold to ask a
 * person above when the disagreements gather above some value of a numeric argument.
 */

/** The 95% two-sided normal quantile. */
const Z = 1.959963984540054;

export interface Interval {
  readonly low: number;
  readonly high: number;
}

/** The Wilson score interval of `successes` out of `n` (95%); [0, 1] when there is nothing to go on. */
export function wilson(successes: number, n: number, z: number = Z): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

export interface ThresholdSuggestion {
  /** The numeric argument the verdicts split on. */
  readonly arg: string;
  /** Ask above this value: every call over it is in the group reviewers disagreed with. */
  readonly over: number;
  readonly above: { readonly reviewed: number; readonly disagreed: number; readonly interval: Interval };
  readonly atOrBelow: { readonly reviewed: number; readonly disagreed: number; readonly interval: Interval };
}

export interface ToolStats {
  readonly tool: string;
  readonly reviewed: number;
  readonly disagreed: number;
  /** disagreed / reviewed. */
  readonly rate: number;
  readonly interval: Interval;
  readonly pending: number;
  readonly suggestion: ThresholdSuggestion | null;
}

/** The fewest disagreements above a split before it is suggested: fewer prove nothing. */
const MIN_DISAGREEMENTS = 3;

export function reviewStats(reviews: readonly ReviewRecord[]): ToolStats[] {
  const tools = [...new Set(reviews.map((review) => review.tool))].sort();
  return tools.map((tool) => {
    const all = reviews.filter((review) => review.tool === tool);
    const reviewed = all.filter((review) => review.verdict !== null);
    const disagreed = reviewed.filter((review) => review.verdict === 'disagree').length;
    return {
      tool,
      reviewed: reviewed.length,
      disagreed,
      rate: reviewed.length === 0 ? 0 : disagreed / reviewed.length,
      interval: wilson(disagreed, reviewed.length),
      pending: all.length - reviewed.length,
      suggestion: suggestThreshold(reviewed),
    };
  });
}

/**
 * The split of one numeric argument whose calls above it reviewers disagreed with clearly more
 * than with those below: the lower bound of the interval above is over the upper bound of the
 * interval below, with at least three disagreements above. Of such splits, the one that separates
 * the two most; none when the verdicts point to no value.
 */
export function suggestThreshold(reviewed: readonly ReviewRecord[]): ThresholdSuggestion | null {
  let best: (ThresholdSuggestion & { gap: number }) | null = null;
  for (const arg of numericArgs(reviewed)) {
    const points = reviewed
      .map((review) => ({ value: numberAt(review.args, arg), disagree: review.verdict === 'disagree' }))
      .filter((point): point is { value: number; disagree: boolean } => point.value !== undefined)
      .sort((a, b) => a.value - b.value);
    const values = [...new Set(points.map((point) => point.value))];
    for (let index = 1; index < values.length; index++) {
      const over = values[index - 1]!;
      const above = points.filter((point) => point.value > over);
      const below = points.filter((point) => point.value <= over);
      const disagreedAbove = above.filter((point) => point.disagree).length;
      const disagreedBelow = below.filter((point) => point.disagree).length;
      if (disagreedAbove < MIN_DISAGREEMENTS) continue;
      const intervalAbove = wilson(disagreedAbove, above.length);
      const intervalBelow = wilson(disagreedBelow, below.length);
      const gap = intervalAbove.low - intervalBelow.high;
      if (gap <= 0 || (best && gap <= best.gap)) continue;
      best = {
        arg,
        over,
        above: { reviewed: above.length, disagreed: disagreedAbove, interval: intervalAbove },
        atOrBelow: { reviewed: below.length, disagreed: disagreedBelow, interval: intervalBelow },
        gap,
      };
    }
  }
  if (!best) return null;
  const { gap: _gap, ...suggestion } = best;
  return suggestion;
}

/** Top-level arguments that hold a number in every reviewed call that has them, in at least half the calls. */
function numericArgs(reviewed: readonly ReviewRecord[]): string[] {
  const counts = new Map<string, number>();
  for (const review of reviewed) {
    if (typeof review.args !== 'object' || review.args === null) continue;
    for (const key of Object.keys(review.args)) {
      if (numberAt(review.args, key) !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].filter(([, count]) => count * 2 >= reviewed.length).map(([key]) => key).sort();
}
