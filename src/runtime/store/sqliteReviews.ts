import type Database from 'better-sqlite3';
import { StoreError } from '../errors';
import { REVIEW_COLUMNS, alreadyReviewed, reviewValues, toReview, type NewReview, type ReviewRecord, type ReviewRow, type ReviewStore, type ReviewVerdict } from '../review/reviewStore';

/** The review queue in the run database (SQLite migration 9). */
export class SqliteReviewStore implements ReviewStore {
  private readonly statements;
  private readonly insertAll;

  constructor(db: Database.Database) {
    this.statements = {
      insert: db.prepare(`INSERT INTO reviews (${REVIEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
      get: db.prepare('SELECT * FROM reviews WHERE id = ?'),
      list: db.prepare(
        `SELECT * FROM reviews WHERE (@status IS NULL OR (@status = 'pending') = (verdict IS NULL)) AND (@tool IS NULL OR tool = @tool)
         ORDER BY sampled_at, id LIMIT @limit`,
      ),
      record: db.prepare(
        'UPDATE reviews SET verdict = @verdict, note = @note, reviewed_by = @by, reviewed_at = @at WHERE id = @id AND verdict IS NULL',
      ),
    };
    this.insertAll = db.transaction((reviews: readonly NewReview[]) => reviews.filter((review) => this.statements.insert.run(...reviewValues(review)).changes === 1));
  }

  async queue(reviews: readonly NewReview[]): Promise<ReviewRecord[]> {
    const queued = this.insertAll.immediate(reviews);
    return queued.map((review) => toReview(this.statements.get.get(review.id) as ReviewRow));
  }

  async get(id: string): Promise<ReviewRecord | undefined> {
    const row = this.statements.get.get(id) as ReviewRow | undefined;
    return row && toReview(row);
  }

  async list(options: { readonly status?: 'pending' | 'reviewed'; readonly tool?: string; readonly limit?: number } = {}): Promise<ReviewRecord[]> {
    const rows = this.statements.list.all({ status: options.status ?? null, tool: options.tool ?? null, limit: options.limit ?? 1000 }) as ReviewRow[];
    return rows.map(toReview);
  }

  async record(id: string, verdict: { readonly verdict: ReviewVerdict; readonly note: string | null; readonly by: string; readonly at: number }): Promise<ReviewRecord> {
    const changed = this.statements.record.run({ id, ...verdict }).changes;
    const row = this.statements.get.get(id) as ReviewRow | undefined;
    if (!row) throw new StoreError(`There is no review ${id}.`);
    if (changed === 0) throw alreadyReviewed(toReview(row));
    return toReview(row);
  }
}
