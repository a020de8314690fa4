import type { ReviewRequests } from '../protocol/alerts';
import type { RequestHandlers } from '../protocol/jsonRpc';
import { currentUser } from '../runtime/currentUser';
import { KeelError } from '../runtime/errors';
import { reviewStats } from '../runtime/review/reviewStats';
import { reviewsOf } from '../runtime/review/reviewStore';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { toReview } from './toProtocol';

/** The runtime process's answers about the review queue, over the store it serves. */
export function reviewHandlers(storeOf: () => CheckpointStore): RequestHandlers<ReviewRequests> {
  return {
    listReviews: async ({ status }) => (await reviewsOf(storeOf()).list(status === undefined ? {} : { status })).map(toReview),
    recordReview: async ({ id, verdict, note }) => {
      if (verdict !== 'agree' && verdict !== 'disagree') throw new KeelError(`A verdict is agree or disagree (got ${JSON.stringify(verdict)}).`);
      const text = typeof note === 'string' && note.trim() !== '' ? note.trim() : null;
      return toReview(await reviewsOf(storeOf()).record(id, { verdict, note: text, by: currentUser(), at: Date.now() }));
    },
    reviewStats: async () => reviewStats(await reviewsOf(storeOf()).list()),
  };
}
