import type { DaemonRequests } from '../protocol/daemon';
import type { RequestHandlers } from '../protocol/jsonRpc';
import { approvalStats } from '../runtime/approval/metrics';
import { KeelError } from '../runtime/errors';
import { transcriptOf } from '../runtime/replay/transcript';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { compareRuns } from '../shared/runComparison';

type DocumentRequests = Pick<DaemonRequests, 'getTranscript' | 'approvalStats' | 'compareRuns'>;

/** What the editor shows of the store beyond one run's records: a run's transcript, two runs compared, the approval stats. */
export function documentHandlers(store: () => CheckpointStore, storeOf: (runId: string) => Promise<CheckpointStore>): RequestHandlers<DocumentRequests> {
  return {
    getTranscript: async ({ runId }) => {
      const s = await storeOf(runId);
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      const [steps, approvals] = await Promise.all([s.getSteps(runId), s.listApprovals({ runId })]);
      return { text: transcriptOf(run, steps, undefined, approvals).text };
    },
    compareRuns: async ({ runA, runB }) => {
      if (runA === runB) throw new KeelError(`Pick two different runs to compare (both are ${runA}).`);
      const journal = async (runId: string) => {
        const s = await storeOf(runId);
        const run = await s.getRun(runId);
        if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
        return { run, steps: await s.getSteps(runId) };
      };
      return compareRuns(await journal(runA), await journal(runB));
    },
    approvalStats: async () => approvalStats(await store().listApprovals({})),
  };
}
