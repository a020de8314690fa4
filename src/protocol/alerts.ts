/** What the runtime process tells the editor of alerts and of calls sampled for review, and what the editor asks of reviews. */

export type AlertSeverity = 'info' | 'warning' | 'error';

/** An alert for the editor's `editor` channel: shown as a notification whose action opens the run. */
export interface EditorAlert {
  readonly id: string;
  /** What raised it: `run_failed`, `flag`, `budget_warning`, `escalation`…, or `test`. */
  readonly event: string;
  readonly severity: AlertSeverity;
  readonly title: string;
  readonly body: string;
  readonly runId: string | null;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

export type ReviewVerdict = 'agree' | 'disagree';

/** A tool call that ran without a person's approval, sampled for a person to look at after the fact. */
export interface Review {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly agent: string;
  readonly tool: string;
  readonly effect: 'none' | 'idempotent' | 'unsafe';
  readonly args: unknown;
  /** What the call returned (or its error), as the model read it. */
  readonly outcome: { readonly ok: boolean; readonly content: string };
  /** Why it was sampled: the rate, or the band that always samples. */
  readonly reason: string;
  readonly sampledAt: number;
  readonly verdict: ReviewVerdict | null;
  readonly note: string | null;
  readonly reviewedBy: string | null;
  readonly reviewedAt: number | null;
}

/** A 95% confidence interval of a rate. */
export interface RateInterval {
  readonly low: number;
  readonly high: number;
}

/** A threshold to ask a person above, where the disagreements gather above some value of a numeric argument. */
export interface ThresholdSuggestion {
  readonly arg: string;
  readonly over: number;
  readonly above: { readonly reviewed: number; readonly disagreed: number; readonly interval: RateInterval };
  readonly atOrBelow: { readonly reviewed: number; readonly disagreed: number; readonly interval: RateInterval };
}

/** The verdicts on one tool's sampled calls. */
export interface ReviewToolStats {
  readonly tool: string;
  readonly reviewed: number;
  readonly disagreed: number;
  /** disagreed / reviewed. */
  readonly rate: number;
  readonly interval: RateInterval;
  readonly pending: number;
  readonly suggestion: ThresholdSuggestion | null;
}

export interface AlertNotifications {
  alert: EditorAlert;
  /** Tool calls of runs that stopped here were queued for review. */
  reviewsQueued: { readonly count: number; readonly tools: readonly string[] };
}

export interface ReviewRequests {
  /** Sampled calls, oldest first: those waiting for a verdict, those with one, or all. */
  listReviews: { params: { status?: 'pending' | 'reviewed' }; result: Review[] };
  /** A person's verdict from the editor, recorded with their name and the time; refused on a review that has one. */
  recordReview: { params: { id: string; verdict: ReviewVerdict; note: string | null }; result: Review };
  /** The disagreement rate per tool with its Wilson interval, and a suggested threshold where the verdicts point to one. */
  reviewStats: { params: Record<string, never>; result: ReviewToolStats[] };
}
