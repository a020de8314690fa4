import { StoreError } from '../errors';
import type { CheckpointStore } from '../store/checkpointStore';
import { storePart } from '../store/storeParts';

/**
 * The review queue: tool calls that ran without a person's approval and were sampled for a person
 * to look at after the fact. Queuing never blocks the run; a verdict says whether the reviewer
 * agrees the call should have gone ahead on its own, with who gave it and when.
 */

export type ReviewVerdict = 'agree' | 'disagree';

export interface NewReview {
  /** `rev_<run id>_<seq>`: one review per tool call. */
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
}

export interface ReviewRecord extends NewReview {
  readonly verdict: ReviewVerdict | null;
  readonly note: string | null;
  readonly reviewedBy: string | null;
  readonly reviewedAt: number | null;
}

export interface ReviewStore {
  /** Queues sampled calls; one already queued is left as it is. Returns those queued now. */
  queue(reviews: readonly NewReview[]): Promise<ReviewRecord[]>;
  get(id: string): Promise<ReviewRecord | undefined>;
  /** Oldest first; `pending` only those without a verdict, `reviewed` only those with one. */
  list(options?: { readonly status?: 'pending' | 'reviewed'; readonly tool?: string; readonly limit?: number }): Promise<ReviewRecord[]>;
  /** Records a verdict; refuses (StoreError) one on a review that has a verdict already. */
  record(id: string, verdict: { readonly verdict: ReviewVerdict; readonly note: string | null; readonly by: string; readonly at: number }): Promise<ReviewRecord>;
}

export interface ReviewCapableStore extends CheckpointStore {
  readonly reviews: ReviewStore;
}

export function reviewsOf(store: CheckpointStore): ReviewStore {
  return storePart<'reviews', ReviewStore>(store, 'reviews', 'review queue');
}

/** The sentence for a second verdict on one review. */
export function alreadyReviewed(record: ReviewRecord): StoreError {
  return new StoreError(
    `Review ${record.id} already has a verdict (${record.verdict ?? ''} by ${record.reviewedBy ?? 'someone'} at ${new Date(record.reviewedAt ?? 0).toISOString()}); it stands.`,
  );
}

export interface ReviewRow {
  id: string;
  run_id: string;
  seq: number | string;
  agent: string;
  tool: string;
  effect: string;
  args: string;
  outcome: string;
  reason: string;
  sampled_at: number | string;
  verdict: string | null;
  note: string | null;
  reviewed_by: string | null;
  reviewed_at: number | string | null;
}

export function toReview(row: ReviewRow): ReviewRecord {
  return {
    id: row.id,
    runId: row.run_id,
    seq: Number(row.seq),
    agent: row.agent,
    tool: row.tool,
    effect: row.effect as NewReview['effect'],
    args: JSON.parse(row.args) as unknown,
    outcome: JSON.parse(row.outcome) as NewReview['outcome'],
    reason: row.reason,
    sampledAt: Number(row.sampled_at),
    verdict: row.verdict as ReviewVerdict | null,
    note: row.note,
    reviewedBy: row.reviewed_by,
    reviewedAt: row.reviewed_at === null ? null : Number(row.reviewed_at),
  };
}

/** A review as the columns of its row, in their order. */
export function reviewValues(review: NewReview): unknown[] {
  return [
    review.id,
    review.runId,
    review.seq,
    review.agent,
    review.tool,
    review.effect,
    JSON.stringify(review.args ?? null),
    JSON.stringify(review.outcome),
    review.reason,
    review.sampledAt,
  ];
}

export const REVIEW_COLUMNS = 'id, run_id, seq, agent, tool, effect, args, outcome, reason, sampled_at';
