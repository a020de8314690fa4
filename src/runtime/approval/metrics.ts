import type { ApprovalRecord } from '../store/checkpointStore';

export interface ApprovalCounts {
  readonly requested: number;
  readonly pending: number;
  readonly approved: number;
  readonly rejected: number;
  /** Approved with arguments a person changed. */
  readonly edited: number;
  readonly expired: number;
  readonly escalated: number;
  /** Approved out of decided, 0 to 1; null before any decision. */
  readonly approvalRate: number | null;
  /** Milliseconds from request to a person's decision (deadlines excluded). */
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
}

export interface ApprovalStats {
  readonly overall: ApprovalCounts;
  readonly byTool: Readonly<Record<string, ApprovalCounts>>;
  readonly byAgent: Readonly<Record<string, ApprovalCounts>>;
}

/** How often people are asked, what they decide, and how long they take. */
export function approvalStats(approvals: readonly ApprovalRecord[]): ApprovalStats {
  const group = (key: (approval: ApprovalRecord) => string) => {
    const groups = new Map<string, ApprovalRecord[]>();
    for (const approval of approvals) groups.set(key(approval), [...(groups.get(key(approval)) ?? []), approval]);
    return Object.fromEntries([...groups].sort(([a], [b]) => a.localeCompare(b)).map(([name, list]) => [name, counts(list)]));
  };
  return { overall: counts(approvals), byTool: group((approval) => approval.tool), byAgent: group((approval) => approval.agent) };
}

function counts(approvals: readonly ApprovalRecord[]): ApprovalCounts {
  const byPerson = approvals.filter((approval) => approval.status === 'decided');
  const approved = byPerson.filter((approval) => approval.decision?.action === 'approve' || approval.decision?.action === 'retry' || approval.decision?.action === 'done');
  const latencies = byPerson
    .map((approval) => (approval.decidedAt ?? approval.requestedAt) - approval.requestedAt)
    .sort((a, b) => a - b);
  return {
    requested: approvals.length,
    pending: approvals.filter((approval) => approval.status === 'pending').length,
    approved: approved.length,
    rejected: byPerson.length - approved.length,
    edited: approved.filter((approval) => approval.decision?.action === 'approve' && approval.decision.args !== undefined).length,
    expired: approvals.filter((approval) => approval.status === 'expired').length,
    escalated: approvals.filter((approval) => approval.escalatedAt !== null).length,
    approvalRate: byPerson.length === 0 ? null : approved.length / byPerson.length,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP95Ms: percentile(latencies, 0.95),
  };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? null;
}
