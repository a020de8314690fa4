import type { Tool } from '../agent/define';
import type { RunContext } from '../agent/runContext';
import { checkToolOutput, type ToolResult } from '../agent/toolCall';
import { KeelError } from '../errors';
import type { TaintDecision } from '../guard/record';
import type { ApprovalRecord, Decision, StepRecord } from '../store/checkpointStore';
import { argsHash } from './decide';
import { needsApproval } from './policy';

/** What the approval gate makes of a tool call before it runs. */
export type GateDecision =
  | { readonly kind: 'go'; readonly args: unknown; readonly edited: boolean; readonly taint?: TaintDecision }
  | { readonly kind: 'waiting'; readonly approval: ApprovalRecord }
  | { readonly kind: 'rejected'; readonly error: string; readonly taint?: TaintDecision };

/** What a person's decision makes of a call whose outcome is unknown. */
export type OutcomeDecision =
  | { readonly kind: 'waiting'; readonly approval: ApprovalRecord }
  | { readonly kind: 'retry' }
  | { readonly kind: 'settled'; readonly result: ToolResult };

/**
 * Asks a person before a call when the tool's or the agent's approval rules say so (or the taint
 * rule holds it), and honours their decision: the call goes ahead with exactly the arguments
 * approved (edited ones included), or is rejected with the reason the model reads. An approval
 * once requested stands for that step on every later attempt, whatever the rules say by then.
 */
export async function approvalGate(
  context: RunContext,
  seq: number,
  tool: Tool,
  args: unknown,
  confidence: number | undefined,
  firstAttempt: boolean,
): Promise<GateDecision> {
  const { services, run, agent, guard, emit } = context;
  const { store } = services;
  let approval = await store.findApproval(run.id, seq, 'policy');
  // The taint rule: arguments carrying values found only in untrusted content hold or refuse the call.
  const check = firstAttempt ? guard.checkCall(tool, args) : undefined;
  const taint = check?.decision;
  if (!approval) {
    if (check?.action === 'refuse' && taint) return { kind: 'rejected', error: guard.refusal(taint), taint };
    const needed = check
      ? needsApproval(
          guard.approvalPolicy(tool, check),
          agent.approval,
          { tool: tool.name, args: args as Record<string, unknown>, effect: tool.effect, confidence, untrustedArguments: check.untrustedArguments },
          { runId: run.id, agent: agent.name, input: run.input },
          services.approvals,
        )
      : undefined;
    if (!needed) return { kind: 'go', args, edited: false, ...(taint ? { taint } : {}) };
    await context.steps.flush();
    const requestedAt = services.now();
    approval = await store.requestApproval({
      id: `appr_${run.id.slice(4)}_${seq}`,
      runId: run.id,
      seq,
      kind: 'policy',
      agent: agent.name,
      tool: tool.name,
      args,
      argsHash: argsHash(args),
      summary: tool.describe(args),
      reason: needed.reason,
      requestedAt,
      deadline: needed.deadlineMs === undefined ? null : requestedAt + needed.deadlineMs,
      onExpiry: needed.onExpiry,
      escalateTo: needed.escalateTo,
    });
    emit({ type: 'approval_requested', approval });
  }
  const decision = approval.decision;
  if (approval.status === 'pending' || !decision) return { kind: 'waiting', approval };
  if (decision.action === 'reject') {
    const who = approval.decidedVia === 'deadline' ? 'No one approved this call in time' : `${approval.decidedBy ?? 'A person'} rejected this call`;
    return { kind: 'rejected', error: `${who}: ${decision.reason}`, ...(taint ? { taint } : {}) };
  }
  if (decision.action !== 'approve') throw new KeelError(`Approval ${approval.id} holds a decision (${decision.action}) that does not apply to it.`);
  const approved = decision.args === undefined ? approval.args : decision.args;
  if (argsHash(approved) !== decision.argsHash) {
    throw new KeelError(`Approval ${approval.id} approves arguments other than the ones it names; the call was not made.`);
  }
  if (decision.args === undefined) return { kind: 'go', args: approved, edited: false, ...(taint ? { taint } : {}) };
  const checked = tool.args.safeParse(approved);
  if (!checked.success) return { kind: 'rejected', error: `The arguments a person approved do not match ${tool.name}'s schema: ${checked.error.message}` };
  return { kind: 'go', args: checked.data, edited: true, ...(taint ? { taint } : {}) };
}

/**
 * An unsafe tool call was in progress when its process stopped: it may or may not have taken
 * effect, so a person decides. Gives the call's result when the decision settles it, `retry` when
 * it is to run again under the same key, or the approval still to be decided.
 */
export async function unknownOutcome(context: RunContext, recorded: StepRecord, tool: Tool, args: unknown): Promise<OutcomeDecision> {
  const { services, run, agent, emit } = context;
  const { store } = services;
  let approval = await store.findApproval(run.id, recorded.seq, 'unknown_outcome');
  if (!approval) {
    approval = await store.requestApproval({
      id: `appr_${run.id.slice(4)}_${recorded.seq}_outcome`,
      runId: run.id,
      seq: recorded.seq,
      kind: 'unknown_outcome',
      agent: agent.name,
      tool: tool.name,
      args,
      argsHash: argsHash(args),
      summary: tool.describe(args),
      reason: `${tool.name} was running when its process stopped, and it is unsafe to repeat: Keel cannot tell whether it took effect. Retry it with the same idempotency key, mark it done with its result, or fail it.`,
      requestedAt: services.now(),
      deadline: null,
      onExpiry: 'reject',
      escalateTo: null,
    });
    emit({ type: 'approval_requested', approval });
  }
  const decision: Decision | null = approval.decision;
  if (!decision) return { kind: 'waiting', approval };
  if (decision.action === 'retry') return { kind: 'retry' };
  if (decision.action !== 'done' && decision.action !== 'fail') {
    throw new KeelError(`Approval ${approval.id} holds a decision (${decision.action}) that does not apply to it.`);
  }
  return {
    kind: 'settled',
    result:
      decision.action === 'done'
        ? checkToolOutput(tool, decision.result)
        : { ok: false, error: `${tool.name} was marked as failed by ${approval.decidedBy ?? 'a person'}: ${decision.reason}` },
  };
}
