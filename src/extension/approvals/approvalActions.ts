import { isDeepStrictEqual } from 'node:util';
import * as vscode from 'vscode';
import type { DecideResult, DecisionRequest } from '../../protocol/daemon';
import type { Approval, Run } from '../../protocol/records';
import { ACTION_LABELS, actionsFor, goingOnTitle, parseArguments, type ApprovalAction } from './approvalText';
import { followRun, reportRefusal, type FollowRunDeps } from '../ui/followRun';
import type { PendingApprovals } from './pendingApprovals';

/** What a button would ask the person for, when it is known already (the tests give it). */
export interface ActionInput {
  /** Why a call is rejected or failed; the model reads it. */
  readonly reason?: string;
  /** Arguments to approve instead of the ones asked about (edited in the review). */
  readonly args?: unknown;
  /** The result of a call marked done. */
  readonly result?: unknown;
}

/** What came of an action, for whoever pressed it (the tests read it). */
export interface ActionOutcome {
  /** The approval with the decision recorded. */
  readonly decided?: Approval;
  /** The run as it stopped again, when the decision let it go on. */
  readonly run?: Run;
  /** Why nothing was decided, as the person was told. */
  readonly error?: string;
  /** The person backed out of a question. */
  readonly cancelled?: boolean;
}

export interface ApprovalActionDeps extends FollowRunDeps {
  readonly approvals: PendingApprovals;
  /** Opens the review of an approval: its arguments, editable, beside its context. */
  readonly review: (approval: Approval) => Promise<void>;
  /** Closes the review of a decided approval, if it is open. */
  readonly closeReview: (approvalId: string) => Promise<void>;
}

/**
 * The one path every decision in the editor takes (notification buttons, the Runs view, the
 * review, the tests): ask what is missing, send the decision to the runtime process, which checks
 * it against the approval as the CLI does, then follow the run as it goes on. `approval` is the
 * approval as the person saw it: an approval names the hash of those arguments, so arguments
 * changed since are refused.
 */
export async function act(deps: ApprovalActionDeps, approval: Approval, action: ApprovalAction, input: ActionInput = {}): Promise<ActionOutcome> {
  if (!actionsFor(approval.kind).includes(action)) {
    return refuse(deps, `${ACTION_LABELS[action]} does not apply to approval ${approval.id}: ${actionsFor(approval.kind).map((choice) => ACTION_LABELS[choice]).join(', ')} do.`);
  }
  if (action === 'review') {
    await deps.review(approval);
    return {};
  }
  let request: DecisionRequest | string | undefined;
  try {
    request = await requestFor(approval, action, input);
  } catch (error) {
    return refuse(deps, error instanceof Error ? error.message : String(error));
  }
  if (request === undefined) return { cancelled: true };
  if (typeof request === 'string') return refuse(deps, request);

  let result: DecideResult;
  try {
    result = await deps.client.request('decide', { approvalId: approval.id, request });
  } catch (error) {
    void reportRefusal(error, deps.log);
    await deps.approvals.refresh();
    return { error: error instanceof Error ? error.message : String(error) };
  }
  const { approval: decided, resumed } = result;
  deps.log.info(`${decided.id}: ${decided.decision?.action ?? action} by ${decided.decidedBy ?? 'unknown'} via ${decided.decidedVia ?? 'vscode'}`);
  // The walkthrough's last step (package.json contributes.walkthroughs) ticks off on this, however the approval was given.
  if (decided.decision?.action === 'approve') void vscode.commands.executeCommand('setContext', 'keel.approvedInEditor', true);
  // The review closes while the run goes on.
  const closing = deps.closeReview(approval.id);
  await deps.approvals.refresh();
  const run = resumed ? await followRun(deps, goingOnTitle(approval, action), () => Promise.resolve({ runId: approval.runId })) : undefined;
  await closing;
  return run ? { decided, run } : { decided };
}

/** The decision to send; a string says why there is none; undefined when the person backed out. */
async function requestFor(approval: Approval, action: Exclude<ApprovalAction, 'review'>, input: ActionInput): Promise<DecisionRequest | string | undefined> {
  switch (action) {
    case 'approve':
    case 'retry': {
      // Unchanged arguments are approved as asked, by their hash; changed ones travel, and the
      // runtime process names them by theirs.
      if (input.args === undefined || isDeepStrictEqual(input.args, approval.args)) return { action: 'approve', argsHash: approval.argsHash };
      return { action: 'approve', args: input.args };
    }
    case 'reject':
    case 'fail': {
      const reason = input.reason ?? (await askReason(approval, action));
      return reason === undefined ? undefined : { action: 'reject', reason };
    }
    case 'done': {
      if ('result' in input) return { action: 'done', result: input.result };
      const text = await askResult(approval);
      if (text === undefined) return undefined;
      const parsed = parseArguments(text);
      return parsed.ok ? { action: 'done', result: parsed.args } : `The result is not valid JSON; nothing was decided.`;
    }
  }
}

function askReason(approval: Approval, action: 'reject' | 'fail'): Thenable<string | undefined> {
  return vscode.window.showInputBox({
    title: action === 'reject' ? `Reject ${approval.tool}: ${approval.summary}` : `Fail ${approval.tool}: ${approval.summary}`,
    prompt:
      action === 'reject'
        ? `Why not? The model reads this and can try something else.`
        : `What happened? The model reads this as ${approval.tool}'s error.`,
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === '' ? 'Give a reason: the model reads it.' : undefined),
  });
}

function askResult(approval: Approval): Thenable<string | undefined> {
  return vscode.window.showInputBox({
    title: `Mark ${approval.tool} done: ${approval.summary}`,
    prompt: `The result ${approval.tool} had, as JSON; the model reads it as the tool's output.`,
    placeHolder: '{"confirmation": "…"}',
    ignoreFocusOut: true,
    validateInput: (value) => {
      const parsed = parseArguments(value);
      return parsed.ok ? undefined : 'Not valid JSON.';
    },
  });
}

/** Tells the person why nothing was decided, and says so to whoever pressed. */
export function refuse(deps: Pick<FollowRunDeps, 'log'>, message: string): ActionOutcome {
  deps.log.warn(message);
  void vscode.window.showErrorMessage(message);
  return { error: message };
}
