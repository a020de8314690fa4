import { RUN_STATE_LABELS, totalTokens } from '../format';
import type { ModelResponse, ToolCall } from '../model/model';
import type { ApprovalRecord, Decision, RunRecord, StepKind, StepRecord } from '../store/checkpointStore';

/** A step as a transcript shows it: recorded, or (in a live session) about to execute. */
export interface TranscriptStep {
  readonly seq: number;
  readonly kind: StepKind;
  readonly name: string;
  /** The call of a tool step that has not executed yet. */
  readonly call: ToolCall | null;
  /** Null while the step has not executed yet. */
  readonly step: StepRecord | null;
}

export interface Transcript {
  readonly text: string;
  /** The line (from 1) each step's block starts on, by seq: where the debugger shows the step. */
  readonly lines: ReadonlyMap<number, number>;
}

/**
 * A run as plain text, one block per step: what the model was asked and said, each tool call
 * with its arguments, the approval asked for it and who decided what when, its failed attempts,
 * its result, then how the run ended. A step's block never changes once the step has ended, and
 * blocks only ever follow each other, so a step keeps its line as the run goes on. Only recorded
 * times appear (never the time of rendering), so a run and its fork differ only where their
 * steps and decisions do. The editor colours it with syntaxes/keel-transcript.tmLanguage.json.
 */
export function renderTranscript(
  run: RunRecord,
  steps: readonly TranscriptStep[],
  children: ReadonlyMap<number, readonly RunRecord[]> = new Map(),
  approvals: readonly ApprovalRecord[] = [],
): Transcript {
  const out: string[] = [`${run.agent} · ${run.model}`];
  const lines = new Map<number, number>();
  if (run.parentRunId) out.push(`sub-agent run of ${run.parentRunId}, step ${run.parentSeq ?? '?'}`);
  out.push('input:', ...indent(run.input), '');
  // A call waiting for a decision has no step yet: its block comes where that step will be.
  const waiting = approvals
    .filter((approval) => !steps.some((entry) => entry.seq === approval.seq))
    .map((approval): TranscriptStep => ({ seq: approval.seq, kind: 'tool', name: approval.tool, call: { id: approval.id, name: approval.tool, arguments: JSON.stringify(approval.args) }, step: null }));
  for (const entry of [...steps, ...waiting]) {
    lines.set(entry.seq, out.length + 1);
    out.push(`step ${entry.seq} · ${entry.kind === 'model' ? `model ${entry.name}` : `tool ${entry.name}`}`);
    const asked = approvals.filter((approval) => approval.seq === entry.seq).flatMap(approvalLines);
    out.push(...(entry.kind === 'model' ? modelBlock(entry.step) : toolBlock(entry, asked)));
    for (const child of children.get(entry.seq) ?? []) out.push(`  sub-agent ${child.agent}: ${child.id}`);
  }
  out.push('', `${RUN_STATE_LABELS[run.state]} · ${run.stepCount} steps · ${totalTokens(run)} tokens`);
  if (run.result !== null) out.push('answer:', ...indent(run.result));
  if (run.error !== null) out.push('error:', ...indent(run.error));
  return { text: `${out.join('\n')}\n`, lines };
}

/** The transcript of a run from its journal and its approvals alone. */
export function transcriptOf(
  run: RunRecord,
  steps: readonly StepRecord[],
  children?: ReadonlyMap<number, readonly RunRecord[]>,
  approvals: readonly ApprovalRecord[] = [],
): Transcript {
  return renderTranscript(
    run,
    steps.map((step) => ({ seq: step.seq, kind: step.kind, name: step.name, call: null, step })),
    children,
    approvals,
  );
}

function modelBlock(step: StepRecord | null): string[] {
  if (!step) return ['  (about to call the model)'];
  const retries = attemptLines(step);
  if (step.status === 'in_progress') return [...retries, '  (in progress)'];
  if (step.status === 'failed') return [...retries, `  failed: ${oneLine(step.error ?? 'unknown error')}`];
  const { message } = step.output as ModelResponse;
  const said = message.content ? ['  says:', ...indent(message.content, '    ')] : [];
  return [...retries, ...said, ...message.toolCalls.map((call) => `  calls ${call.name} ${call.arguments}`)];
}

function toolBlock(entry: TranscriptStep, approvals: readonly string[]): string[] {
  const { step } = entry;
  const input = (step?.input ?? null) as { arguments?: unknown } | null;
  const args = typeof input?.arguments === 'string' ? input.arguments : (entry.call?.arguments ?? '');
  const head = [`  arguments: ${oneLine(args)}`, ...approvals];
  if (!step) return [...head, '  (about to run)'];
  const retries = attemptLines(step);
  if (step.status === 'in_progress') return [...head, ...retries, '  (in progress)'];
  if (step.status === 'failed') return [...head, ...retries, `  error: ${oneLine(step.error ?? 'failed')}`];
  const output = step.output as { content?: string } | null;
  return [...head, ...retries, `  result: ${oneLine(output?.content ?? '')}`];
}

/** Each failed attempt of a step: when it failed, how Keel classed it, and whether it waited and tried again or gave up. */
function attemptLines(step: StepRecord): string[] {
  return step.failedAttempts.map((failure) => {
    const next = failure.delayMs === undefined ? 'gave up' : `retried after ${failure.delayMs} ms`;
    return `  attempt ${failure.attempt} failed at ${isoTime(failure.at)} (${failure.class}: ${failure.reason}), ${next}: ${oneLine(failure.error)}`;
  });
}

/** What the step waited for, then who decided what and when (or that nobody has yet). */
function approvalLines(approval: ApprovalRecord): string[] {
  const why = approval.kind === 'policy' ? 'approval asked' : 'approval asked (the outcome is unknown)';
  const asked = `  ${why} at ${isoTime(approval.requestedAt)}: ${oneLine(approval.reason)} · ${oneLine(approval.summary)}`;
  const { decision } = approval;
  if (approval.status === 'pending' || decision === null) return [asked, '  decision: pending'];
  const who = approval.decidedVia === 'deadline' ? 'by the deadline' : `by ${approval.decidedBy ?? 'someone'} in ${approval.decidedVia ?? 'an unknown place'}`;
  const when = approval.decidedAt === null ? '' : ` at ${isoTime(approval.decidedAt)}`;
  return [asked, `  decision: ${decisionText(decision, approval.argsHash)} ${who}${when}`];
}

function decisionText(decision: Decision, askedHash: string): string {
  switch (decision.action) {
    case 'approve':
      return decision.argsHash === askedHash ? 'approved' : 'approved with edited arguments';
    case 'reject':
      return `rejected (${oneLine(decision.reason)})`;
    case 'retry':
      return 'call again';
    case 'done':
      return `done with ${oneLine(JSON.stringify(decision.result) ?? 'nothing')}`;
    case 'fail':
      return `failed (${oneLine(decision.reason)})`;
  }
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function indent(text: string, prefix = '  '): string[] {
  return text.split(/\r?\n/).map((line) => `${prefix}${line}`);
}

function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n');
}
