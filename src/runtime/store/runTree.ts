import { KeelError } from '../errors';
import { RESUMABLE_STATES, type ApprovalRecord, type CheckpointStore, type RunRecord } from './checkpointStore';

/**
 * Runs and their sub-agent runs form trees: a run that calls a sub-agent waits for it, and the tree
 * goes on from its root. These read a tree from the store.
 */

/** The run that started the tree `runId` belongs to (itself, unless it is a sub-agent's). */
export async function rootRunOf(store: CheckpointStore, runId: string): Promise<RunRecord> {
  const run = await store.getRun(runId);
  if (!run) throw new KeelError(`There is no run ${runId} in ${store.location}.`);
  return (await ancestorsOf(store, run)).at(-1) ?? run;
}

/** The runs a sub-agent run stands under: its parent first, the root last; none for a root. */
export async function ancestorsOf(store: CheckpointStore, run: RunRecord): Promise<RunRecord[]> {
  const ancestors: RunRecord[] = [];
  for (let parentId = run.parentRunId; parentId; ) {
    const parent: RunRecord | undefined = await store.getRun(parentId);
    if (!parent) break;
    ancestors.push(parent);
    parentId = parent.parentRunId;
  }
  return ancestors;
}

/** The ids of a run and of every sub-agent run under it. */
export async function runTree(store: CheckpointStore, runId: string): Promise<string[]> {
  const ids = [runId];
  for (let index = 0; index < ids.length; index++) {
    for (const child of await store.childRuns(ids[index] ?? '')) ids.push(child.id);
  }
  return ids;
}

/** Approvals of a run and its sub-agents' runs with the given status. */
export async function approvalsOfTree(store: CheckpointStore, runId: string, status: ApprovalRecord['status']): Promise<ApprovalRecord[]> {
  const tree = new Set(await runTree(store, runId));
  return (await store.listApprovals({ status })).filter((approval) => tree.has(approval.runId));
}

/**
 * The one rule for what goes on after a decision, the same in the editor, the CLI and on Restate:
 * a decision on any run of a tree continues the tree from its root, once nothing in the tree
 * waits for a decision any more (the root's replay reaches each sub-agent and continues it).
 * Returns the root to continue, or undefined when the tree still waits or cannot go on.
 */
export async function treeToContinue(store: CheckpointStore, runId: string): Promise<RunRecord | undefined> {
  const root = await rootRunOf(store, runId);
  if (!RESUMABLE_STATES.includes(root.state)) return undefined;
  return (await approvalsOfTree(store, root.id, 'pending')).length === 0 ? root : undefined;
}
