import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { KeelError } from '../errors';
import { RUN_STATE_LABELS } from '../format';
import { TERMINAL_STATES, type ApprovalRecord, type CheckpointStore, type Decision, type DecisionMeta } from '../store/checkpointStore';
import { rootRunOf } from '../store/runTree';

/** SHA-256 of the canonical JSON of a call's arguments: what an approval names to approve them. */
export function argsHash(args: unknown): string {
  return sha256(canonicalJson(args));
}

/** A decision as a person makes it, before Keel checks it against the approval. */
export type DecisionRequest =
  | { readonly action: 'approve'; readonly argsHash: string; readonly args?: unknown }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'done'; readonly result: unknown };

/** A decision Keel refused: it does not match the approval it names. */
export class DecisionError extends KeelError {}

/**
 * Records a person's decision on a pending approval, after checking it is about exactly what the
 * approval asked: an approval names the hash of the arguments it approves (the ones asked about,
 * or edited ones given with it), so a decision about other arguments is refused. For an unknown
 * outcome, approve means call again with the same key, reject means fail the call, done gives
 * its result.
 */
export async function decide(
  store: CheckpointStore,
  approvalId: string,
  request: DecisionRequest,
  meta: Omit<DecisionMeta, 'via'> & { via: 'cli' | 'vscode' },
): Promise<ApprovalRecord> {
  const approval = await store.getApproval(approvalId);
  if (!approval) throw new DecisionError(`There is no approval ${approvalId}.`);
  // Checked before anything is recorded: a decision nothing can act on any more is refused.
  for (const run of approval.status === 'pending' ? [await store.getRun(approval.runId), await rootRunOf(store, approval.runId)] : []) {
    if (run && TERMINAL_STATES.includes(run.state)) {
      throw new DecisionError(`Run ${run.id} has ended (${RUN_STATE_LABELS[run.state]}), so approval ${approvalId} can no longer be decided.`);
    }
  }
  return store.decideApproval(approvalId, toDecision(approval, request), meta);
}

function toDecision(approval: ApprovalRecord, request: DecisionRequest): Decision {
  switch (request.action) {
    case 'approve': {
      const approved = request.args === undefined ? approval.args : request.args;
      const hash = argsHash(approved);
      if (request.argsHash !== hash) {
        throw new DecisionError(
          `This decision approves arguments with hash ${request.argsHash.slice(0, 12)}…, but ${request.args === undefined ? `approval ${approval.id} asks about` : 'the arguments given hash to'} ${hash.slice(0, 12)}…; nothing was decided.`,
        );
      }
      if (approval.kind === 'unknown_outcome') {
        if (request.args !== undefined) throw new DecisionError(`Approval ${approval.id} is about a call that may already have happened; its arguments cannot be changed.`);
        return { action: 'retry' };
      }
      return request.args === undefined || hash === approval.argsHash ? { action: 'approve', argsHash: hash } : { action: 'approve', argsHash: hash, args: request.args };
    }
    case 'reject':
      if (request.reason.trim() === '') throw new DecisionError('A rejection needs a reason: the model reads it.');
      return approval.kind === 'unknown_outcome' ? { action: 'fail', reason: request.reason } : { action: 'reject', reason: request.reason };
    case 'done':
      if (approval.kind !== 'unknown_outcome') {
        throw new DecisionError(`Approval ${approval.id} asks whether ${approval.tool} may run; approve or reject it.`);
      }
      return { action: 'done', result: request.result };
  }
}

/**
 * Applies deadlines: a pending approval past its deadline is escalated once (when its policy says
 * so, with a fresh deadline) or rejected. Returns the approvals it changed.
 */
export async function applyDeadlines(store: CheckpointStore, now: number): Promise<ApprovalRecord[]> {
  const changed: ApprovalRecord[] = [];
  for (const approval of await store.listApprovals({ status: 'pending' })) {
    if (approval.deadline === null || approval.deadline > now) continue;
    if (approval.onExpiry === 'escalate' && approval.escalatedAt === null) {
      changed.push(await store.escalateApproval(approval.id, now, now + (approval.deadline - approval.requestedAt)));
      continue;
    }
    const reason = `No one decided before the deadline (${new Date(approval.deadline).toISOString()}).`;
    const decision: Decision = approval.kind === 'unknown_outcome' ? { action: 'fail', reason } : { action: 'reject', reason };
    try {
      changed.push(await store.decideApproval(approval.id, decision, { by: 'keel', via: 'deadline', at: now }, true));
    } catch (error) {
      if (!(error instanceof KeelError)) throw error;
    }
  }
  return changed;
}
