/** The words for what review verdicts add up to: the CLI (`keel review --stats`) and the editor say the same. */

interface Interval {
  readonly low: number;
  readonly high: number;
}

interface Split {
  readonly reviewed: number;
  readonly disagreed: number;
  readonly interval: Interval;
}

/** `3 of 25 (12%, 95% CI 4–30%)`. */
export function describeRate(disagreed: number, reviewed: number, interval: Interval): string {
  const percent = (share: number) => `${Math.round(share * 100)}%`;
  return `${disagreed} of ${reviewed} (${reviewed === 0 ? 'none reviewed' : percent(disagreed / reviewed)}, 95% CI ${percent(interval.low)}–${percent(interval.high)})`;
}

/** A suggested threshold in a sentence, with the approval rule that would apply it. */
export function describeSuggestion(tool: string, suggestion: { readonly arg: string; readonly over: number; readonly above: Split; readonly atOrBelow: Split }): string {
  const { arg, over, above, atOrBelow } = suggestion;
  const field = arg === 'amount' ? '' : `, { field: '${arg}' }`;
  return (
    `Ask a person before ${tool} when ${arg} is over ${over}: reviewers disagreed with ${describeRate(above.disagreed, above.reviewed, above.interval)} of the calls above it ` +
    `and ${describeRate(atOrBelow.disagreed, atOrBelow.reviewed, atOrBelow.interval)} at or below it. In the tool: approval: approvals.amountOver(${over}${field}).`
  );
}
