import { StoreError } from '../errors';
import { REVIEW_COLUMNS, alreadyReviewed, reviewValues, toReview, type NewReview, type ReviewRecord, type ReviewRow, type ReviewStore, type ReviewVerdict } from '../review/reviewStore';
import type { Connection } from './postgresConnection';

/** The review queue in the PostgreSQL store (its fourth migration), as the SQLite store keeps it. */
export class PostgresReviewStore implements ReviewStore {
  constructor(private readonly connection: Connection) {}

  queue(reviews: readonly NewReview[]): Promise<ReviewRecord[]> {
    return this.connection.transaction(async (db) => {
      const queued: ReviewRecord[] = [];
      for (const review of reviews) {
        const { rows } = await db.query(
          `INSERT INTO reviews (${REVIEW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING *`,
          reviewValues(review),
        );
        if (rows[0]) queued.push(toReview(rows[0] as ReviewRow));
      }
      return queued;
    });
  }

  async get(id: string): Promise<ReviewRecord | undefined> {
    const [row] = (await this.connection.query('SELECT * FROM reviews WHERE id = $1', [id])) as ReviewRow[];
    return row && toReview(row);
  }

  async list(options: { readonly status?: 'pending' | 'reviewed'; readonly tool?: string; readonly limit?: number } = {}): Promise<ReviewRecord[]> {
    const rows = (await this.connection.query(
      `SELECT * FROM reviews WHERE ($1::text IS NULL OR ($1::text = 'pending') = (verdict IS NULL)) AND ($2::text IS NULL OR tool = $2::text)
       ORDER BY sampled_at, id LIMIT $3`,
      [options.status ?? null, options.tool ?? null, options.limit ?? 1000],
    )) as ReviewRow[];
    return rows.map(toReview);
  }

  async record(id: string, verdict: { readonly verdict: ReviewVerdict; readonly note: string | null; readonly by: string; readonly at: number }): Promise<ReviewRecord> {
    const changed = await this.connection.query(
      'UPDATE reviews SET verdict = $2, note = $3, reviewed_by = $4, reviewed_at = $5 WHERE id = $1 AND verdict IS NULL RETURNING *',
      [id, verdict.verdict, verdict.note, verdict.by, verdict.at],
    );
    if (changed[0]) return toReview(changed[0] as ReviewRow);
    const existing = await this.get(id);
    if (!existing) throw new StoreError(`There is no review ${id}.`);
    throw alreadyReviewed(existing);
  }
}
