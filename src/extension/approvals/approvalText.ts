import type { Approval, ApprovalCounts, ApprovalKind, ApprovalStats, ModelAnswer, Run, Step } from '../../protocol/records';
import { compactArgs, formatDuration, truncate } from '../../shared/format';
import { RUN_STATE_LABELS } from '../../shared/runText';

/** How approvals read in the editor: notifications, tree rows, the review and the stats (no vscode here, so unit tests can run it). */

/** What a person can do about a pending approval. */
export type ApprovalAction = 'approve' | 'reject' | 'retry' | 'done' | 'fail' | 'review';

/** The label of each action on buttons. Reject, Fail and Mark Done ask for a reason or a result before deciding. */
export const ACTION_LABELS: Readonly<Record<ApprovalAction, string>> = {
  approve: 'Approve',
  reject: 'Reject',
  retry: 'Retry',
  done: 'Mark Done…',
  fail: 'Fail…',
  review: 'Review…',
};

/**
 * The actions offered for an approval, in button order: a call waiting for permission is approved
 * or rejected; a call whose outcome is unknown is retried, marked done or failed.
 */
export function actionsFor(kind: ApprovalKind): readonly ApprovalAction[] {
  return kind === 'policy' ? ['approve', 'reject', 'review'] : ['retry', 'done', 'fail', 'review'];
}

type ApprovalFacts = Pick<Approval, 'kind' | 'agent' | 'tool' | 'summary' | 'reason' | 'deadline' | 'escalateTo' | 'escalatedAt' | 'under'>;

/** Who asks: the agent, and for a sub-agent the agent it works for (`hotel (sub-agent of trip)`). */
function asker(approval: Pick<Approval, 'agent' | 'under'>): string {
  const parent = approval.under?.[0];
  return parent ? `${approval.agent} (sub-agent of ${parent.agent})` : approval.agent;
}

/**
 * The notification for one pending approval, e.g.
 * `Keel · travel wants to book_flight: $640 NYC→LIS (over $600)`.
 */
export function approvalMessage(approval: ApprovalFacts, now: number): string {
  const what = approval.summary.trim();
  const main =
    approval.kind === 'policy'
      ? `Keel · ${asker(approval)} wants to ${approval.tool}${what ? `: ${what}` : ''} (${approval.reason})`
      : `Keel · ${asker(approval)}'s ${approval.tool}${what ? ` (${what})` : ''} was cut off when its process stopped: did it take effect?`;
  return `${main}${escalation(approval)}${timeLeft(approval, now)}`;
}

/**
 * VS Code replaces a notification with a later one of the same text, so a notification whose text
 * is already on screen for another approval names its run.
 */
export function distinctMessage(text: string, approval: Pick<Approval, 'id' | 'runId'>, shown: ReadonlySet<string>): string {
  const candidates = [text, `${text} · run …${approval.runId.slice(-6)}`, `${text} · ${approval.id}`];
  return candidates.find((candidate) => !shown.has(candidate)) ?? candidates[candidates.length - 1] ?? text;
}

/** The one notification that stands for approvals beyond those shown one by one. */
export function waitingMessage(count: number): string {
  return count === 1 ? 'Keel · 1 approval is waiting' : `Keel · ${count} approvals are waiting`;
}

/** The status bar: `$(bell) 2 approvals`, or nothing when none is pending. */
export function statusBarText(count: number): string | undefined {
  if (count === 0) return undefined;
  return `$(bell) ${count} approval${count === 1 ? '' : 's'}`;
}

/** An approval under its run in the Runs view: what the call is, and why it waits. */
export function approvalRow(approval: ApprovalFacts): { label: string; description: string } {
  const what = approval.summary.trim();
  return {
    label: `${approval.under?.length ? `${approval.agent} · ` : ''}${approval.tool}${what ? `: ${what}` : ''}`,
    description: approval.kind === 'policy' ? `needs approval · ${approval.reason}` : 'outcome unknown',
  };
}

/** A pending approval in a quick pick. */
export function approvalPick(approval: ApprovalFacts & Pick<Approval, 'runId' | 'requestedAt'>, now: number): { label: string; description: string; detail: string } {
  return {
    label: approval.kind === 'policy' ? `${asker(approval)} wants to ${approval.tool}` : `${asker(approval)}: did ${approval.tool} take effect?`,
    description: approval.summary,
    detail: `${approval.kind === 'policy' ? approval.reason : 'its process stopped during the call'} · asked ${ago(now - approval.requestedAt)}${escalation(approval)}${timeLeft(approval, now)} · ${approval.runId}`,
  };
}

/** The title of the progress while a run goes on after a decision. */
export function goingOnTitle(approval: Pick<Approval, 'agent' | 'tool'>, action: ApprovalAction): string {
  const decided: Record<ApprovalAction, string> = {
    approve: 'approved',
    reject: 'rejected',
    retry: 'to be retried',
    done: 'marked done',
    fail: 'marked failed',
    review: 'reviewed',
  };
  return `Keel · ${approval.agent} goes on: ${approval.tool} ${decided[action]}`;
}

/** The command that records a decision on a pending approval and resumes its run. */
export function resolveCommand(approval: Pick<Approval, 'id'>): string {
  return `keel resolve ${approval.id} --retry | --done '<result as JSON>' | --fail '<reason>'`;
}

/** What decides an approval in a terminal in the workspace; Keel then resumes its run. */
export function decideCommand(approval: Pick<Approval, 'id' | 'kind'>): string {
  return approval.kind === 'policy' ? `keel approve ${approval.id}    # or: keel reject ${approval.id} --reason '<why>'` : resolveCommand(approval);
}

/** What the person typed as arguments, or why it cannot be approved. */
export function parseArguments(text: string): { ok: true; args: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, args: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, error: `The arguments are not valid JSON (${error instanceof Error ? error.message : String(error)}); nothing was decided.` };
  }
}

/** The editable document of an approval's arguments: pretty JSON. */
export function argumentsText(args: unknown): string {
  return `${JSON.stringify(args, null, 2) ?? 'null'}\n`;
}

/** How many earlier tool results the review shows. */
const TOOL_RESULTS_SHOWN = 3;

/**
 * The read-only context beside the arguments under review: what is asked and why, the deadline,
 * and the run so far (its input, the model's last words, the last tool results).
 */
export function reviewContext(
  approval: Approval,
  run: Pick<Run, 'id' | 'state' | 'input'> | undefined,
  steps: readonly Pick<Step, 'seq' | 'kind' | 'name' | 'status' | 'output' | 'error'>[],
  now: number,
): string {
  const lines: string[] = [];
  const policy = approval.kind === 'policy';
  lines.push(policy ? `# ${approval.agent} wants to ${approval.tool}` : `# Did ${approval.tool} take effect?`, '');
  if (approval.summary.trim()) lines.push(`**${approval.summary.trim()}**`, '');
  lines.push(`**Why:** ${approval.reason}`, '');
  if (approval.status !== 'pending') lines.push(`**This approval is no longer pending** (${approval.status}${approval.decidedBy ? ` by ${approval.decidedBy}` : ''}).`, '');
  lines.push('| | |', '|---|---|');
  lines.push(`| Approval | \`${approval.id}\` |`);
  lines.push(`| Run | \`${approval.runId}\`${run ? ` (${RUN_STATE_LABELS[run.state]})` : ''} |`);
  lines.push(`| Asked | ${new Date(approval.requestedAt).toISOString()} (${ago(now - approval.requestedAt)}) |`);
  lines.push(`| Deadline | ${deadlineCell(approval, now)} |`);
  if (approval.escalatedAt !== null) lines.push(`| Escalated | to ${approval.escalateTo ?? 'someone else'}, ${new Date(approval.escalatedAt).toISOString()} |`);
  lines.push(`| Arguments hash | \`${approval.argsHash.slice(0, 16)}…\` |`, '');

  lines.push('## How to decide', '');
  if (policy) {
    lines.push(
      `Edit the arguments in the JSON document beside this one if they need changing, then choose **Approve** in its title bar or above its first line: ${approval.tool} runs with exactly the arguments in that document, checked by their SHA-256. **Reject** asks for a reason, which the model reads.`,
      '',
    );
  } else {
    lines.push(
      `${approval.tool} was running when its process stopped; Keel cannot tell whether it took effect. **Retry** calls it again with the same idempotency key (safe when the service it calls honours the key). **Mark Done…** records the result it had. **Fail…** tells the model it failed, with your reason.`,
      '',
    );
  }

  lines.push('## The run so far', '');
  if (run) lines.push('**Input**', '', quote(run.input), '');
  const earlier = steps.filter((step) => step.seq < approval.seq);
  const said = [...earlier].reverse().find((step) => step.kind === 'model' && step.status === 'completed' && assistantText(step).trim() !== '');
  if (said) lines.push('**Last assistant message**', '', quote(assistantText(said)), '');
  const results = earlier.filter((step) => step.kind === 'tool' && step.status !== 'in_progress').slice(-TOOL_RESULTS_SHOWN);
  if (results.length > 0) {
    lines.push('**Last tool results**', '');
    for (const step of results) lines.push(`- \`${step.name}\` ${toolResult(step)}`);
    lines.push('');
  }
  if (!run) lines.push('_The run could not be read._', '');

  lines.push(policy ? '## Arguments asked about' : '## Arguments of the call', '', '```json', argumentsText(approval.args).trimEnd(), '```', '');
  return lines.join('\n');
}

/** Approval metrics as a read-only Markdown document. */
export function statsDocument(stats: ApprovalStats, now: number): string {
  const header = '| | requested | approved | rejected | edited | expired | escalated | pending | approval rate | p50 | p95 |';
  const rule = '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';
  const row = (name: string, counts: ApprovalCounts) =>
    `| ${name} | ${counts.requested} | ${counts.approved} | ${counts.rejected} | ${counts.edited} | ${counts.expired} | ${counts.escalated} | ${counts.pending} | ${
      counts.approvalRate === null ? '–' : `${Math.round(counts.approvalRate * 100)}%`
    } | ${counts.latencyP50Ms === null ? '–' : formatDuration(counts.latencyP50Ms)} | ${counts.latencyP95Ms === null ? '–' : formatDuration(counts.latencyP95Ms)} |`;
  const table = (title: string, groups: Readonly<Record<string, ApprovalCounts>>) => {
    const entries = Object.entries(groups);
    return entries.length === 0 ? [] : [`## ${title}`, '', header, rule, ...entries.map(([name, counts]) => row(`\`${name}\``, counts)), ''];
  };
  return [
    '# Keel approval stats',
    '',
    `As of ${new Date(now).toISOString()}. Latency is the time from the request to a person's decision; expired approvals are not counted in it. The approval rate is approved out of decided.`,
    '',
    '## All approvals',
    '',
    header,
    rule,
    row('all', stats.overall),
    '',
    ...table('By tool', stats.byTool),
    ...table('By agent', stats.byAgent),
  ].join('\n');
}

function assistantText(step: Pick<Step, 'output'>): string {
  const response = step.output as Partial<ModelAnswer> | null;
  return response?.message?.content ?? '';
}

function toolResult(step: Pick<Step, 'status' | 'output' | 'error'>): string {
  if (step.status === 'failed') return `✗ ${truncate(step.error ?? 'failed', 500)}`;
  const output = step.output as { content?: string; value?: unknown } | null;
  const content = output?.content ?? compactArgs(output?.value);
  return `→ ${truncate(content, 500)}`;
}

function quote(text: string): string {
  return text
    .trim()
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}

function deadlineCell(approval: ApprovalFacts & Pick<Approval, 'onExpiry'>, now: number): string {
  if (approval.deadline === null) return 'none';
  const then = approval.onExpiry === 'escalate' && approval.escalatedAt === null ? `escalated to ${approval.escalateTo ?? 'someone else'}` : 'rejected';
  const left = approval.deadline - now;
  return `${new Date(approval.deadline).toISOString()} (${left > 0 ? `in ${formatDuration(left)}` : 'passed'}); then ${then}`;
}

function escalation(approval: ApprovalFacts): string {
  return approval.escalatedAt === null ? '' : ` · escalated to ${approval.escalateTo ?? 'someone else'}`;
}

function timeLeft(approval: ApprovalFacts, now: number): string {
  if (approval.deadline === null) return '';
  const left = approval.deadline - now;
  return left > 0 ? ` · decide within ${formatDuration(left)}` : ' · past its deadline';
}

function ago(ms: number): string {
  return ms < 1000 ? 'just now' : `${formatDuration(ms)} ago`;
}
