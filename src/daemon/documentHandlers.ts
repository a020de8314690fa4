import type { DaemonRequests } from '../protocol/daemon';
import type { RequestHandlers } from '../protocol/jsonRpc';
import { approvalStats } from '../runtime/approval/metrics';
import { KeelError } from '../runtime/errors';
import { transcriptOf } from '../runtime/replay/transcript';
import type { CheckpointStore } from '../runtime/store/checkpointStore';

type DocumentRequests = Pick<DaemonRequests, 'getTranscript' | 'approvalStats'>;

/** The documents the editor shows as text, written here from the store: a run's transcript, the approval stats. */
export function documentHandlers(store: () => CheckpointStore, storeOf: (runId: string) => Promise<CheckpointStore>): RequestHandlers<DocumentRequests> {
  return {
    getTranscript: async ({ runId }) => {
      const s = await storeOf(runId);
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      return { text: transcriptOf(run, await s.getSteps(runId)).text };
    },
    approvalStats: async () => approvalStats(await store().listApprovals({})),
  };
}
