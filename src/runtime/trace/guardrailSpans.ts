import { readAnswerGuard, readToolResultGuard, describeFindings, type RemovedLink, type TaintDecision } from '../guard/record';
import { TAINT_REASON } from '../guard/runGuard';
import type { ApprovalRecord, RunRecord, StepRecord } from '../store/checkpointStore';
import type { JournalView } from './journalView';
import type { AttributeValue, Flag, TraceSpan } from './span';

/**
 * The guard's decisions as `run_guardrail` spans, each with the flag it raises: the injection
 * screen on a tool result (under the tool's span), the taint rule on a side-effecting call (under
 * the call's span, or under the run while the call waits for a person), and the sanitizing of the
 * final answer (under the model call that wrote it). Rebuilt from what the journal recorded.
 */

export type GuardrailName = 'injection_screen' | 'untrusted_arguments' | 'output_sanitizer';

/** Keel's attribute names for guardrail spans. */
export const GUARDRAIL_ATTRIBUTES = {
  name: 'keel.guardrail.name',
  decision: 'keel.guardrail.decision',
  reason: 'keel.guardrail.reason',
  channel: 'keel.guardrail.channel',
  patterns: 'keel.guardrail.patterns',
  arguments: 'keel.guardrail.arguments',
  sources: 'keel.guardrail.sources',
  hosts: 'keel.guardrail.hosts',
  excerpts: 'keel.guardrail.excerpts',
} as const;

export interface GuardrailSpan {
  readonly span: Omit<TraceSpan, 'flags'>;
  readonly flags: readonly Flag[];
}

/** The span id of a path under the run (see spanIdFor): `[]` for the run, `[seq]` for a step. */
export type SpanIds = (...path: readonly (string | number)[]) => string;

/** `content` turns captured content into an attribute value; null when content is not captured. */
export function guardrailSpans(
  run: RunRecord,
  view: JournalView,
  approvals: readonly ApprovalRecord[],
  ids: SpanIds,
  content: ((value: unknown) => string) | null,
): GuardrailSpan[] {
  const spans: GuardrailSpan[] = [];
  const decided = new Set<number>();
  for (const entry of view.entries) {
    const { step } = entry;
    const parent = ids(step.seq);
    if (entry.kind === 'tool') {
      const { channel, guard } = readToolResultGuard(step.output);
      if (guard?.taint) {
        decided.add(step.seq);
        spans.push(taintSpan(run, ids, step.seq, parent, entry.name, guard.taint, step.startedAt));
      }
      if (guard?.findings && guard.findings.length > 0) {
        const at = step.endedAt ?? step.startedAt;
        const described = describeFindings(guard.findings);
        const what = `${channel === 'document' ? 'The document' : 'The output'} ${entry.name} returned`;
        const reason = `${what} looks like a prompt injection: ${described.join('; ')}.`;
        const attributes: Record<string, AttributeValue> = {
          ...common(run, step.seq, 'injection_screen', 'flag', reason),
          'gen_ai.tool.name': entry.name,
          [GUARDRAIL_ATTRIBUTES.channel]: channel ?? 'tool_output',
          [GUARDRAIL_ATTRIBUTES.patterns]: guard.findings.map((finding) => finding.pattern),
        };
        if (content) attributes[GUARDRAIL_ATTRIBUTES.excerpts] = content(guard.findings.map((finding) => finding.excerpt));
        const span = guardrailSpan(run, ids(step.seq, 'guardrail', 'injection_screen'), 'injection_screen', parent, at, attributes);
        spans.push({ span, flags: [{ kind: 'injection', severity: 'warning', message: reason, spanId: span.spanId }] });
      }
    } else if (entry.response && step.status === 'completed') {
      const answer = readAnswerGuard(step.output);
      if (answer && answer.removed.length > 0) spans.push(sanitizerSpan(run, ids, step, parent, answer.removed));
    }
  }
  // A call the taint rule holds for a person has no step yet: its approval says why.
  for (const approval of approvals) {
    if (approval.kind !== 'policy' || decided.has(approval.seq) || !approval.reason.includes(TAINT_REASON)) continue;
    const reason = approval.reason
      .split('; ')
      .filter((clause) => clause.includes(TAINT_REASON))
      .join('; ');
    const taint: TaintDecision = { decision: 'approve', reason, arguments: [] };
    spans.push(taintSpan(run, ids, approval.seq, ids(), approval.tool, taint, approval.requestedAt));
  }
  return spans;
}

function taintSpan(run: RunRecord, ids: SpanIds, seq: number, parent: string, tool: string, taint: TaintDecision, at: number): GuardrailSpan {
  const attributes: Record<string, AttributeValue> = {
    ...common(run, seq, 'untrusted_arguments', taint.decision, taint.reason),
    'gen_ai.tool.name': tool,
  };
  if (taint.arguments.length > 0) {
    attributes[GUARDRAIL_ATTRIBUTES.arguments] = [...new Set(taint.arguments.map((argument) => argument.path))];
    attributes[GUARDRAIL_ATTRIBUTES.sources] = [
      ...new Set(taint.arguments.map((argument) => `${argument.channel} of ${argument.tool} (step ${argument.seq})`)),
    ];
  }
  const span = guardrailSpan(run, ids(seq, 'guardrail', 'untrusted_arguments'), 'untrusted_arguments', parent, at, attributes);
  const message =
    taint.decision === 'refuse' ? `Keel refused ${tool}: ${taint.reason}.` : `${tool} was held for a person's approval: ${taint.reason}.`;
  return { span, flags: [{ kind: 'injection', severity: taint.decision === 'refuse' ? 'error' : 'warning', message, spanId: span.spanId }] };
}

function sanitizerSpan(run: RunRecord, ids: SpanIds, step: StepRecord, parent: string, removed: readonly RemovedLink[]): GuardrailSpan {
  const hosts = [...new Set(removed.map((link) => link.host))];
  const count = removed.length === 1 ? 'a link or image' : `${removed.length} links and images`;
  const reason = `The answer pointed to ${hosts.length === 1 ? 'a host' : 'hosts'} outside the allow-list (${hosts.join(', ')}); Keel took out ${count}.`;
  const at = step.endedAt ?? step.startedAt;
  const span = guardrailSpan(run, ids(step.seq, 'guardrail', 'output_sanitizer'), 'output_sanitizer', parent, at, {
    ...common(run, step.seq, 'output_sanitizer', 'sanitize', reason),
    [GUARDRAIL_ATTRIBUTES.hosts]: hosts,
  });
  return { span, flags: [{ kind: 'exfiltration', severity: 'warning', message: reason, spanId: span.spanId }] };
}

function common(run: RunRecord, seq: number, name: GuardrailName, decision: string, reason: string): Record<string, AttributeValue> {
  return {
    'gen_ai.operation.name': 'run_guardrail',
    'gen_ai.conversation.id': run.id,
    'keel.step.id': seq,
    [GUARDRAIL_ATTRIBUTES.name]: name,
    [GUARDRAIL_ATTRIBUTES.decision]: decision,
    [GUARDRAIL_ATTRIBUTES.reason]: reason,
  };
}

/** A decision takes no time of its own: its span starts and ends at once. */
function guardrailSpan(
  run: RunRecord,
  spanId: string,
  name: GuardrailName,
  parentSpanId: string,
  at: number,
  attributes: Record<string, AttributeValue>,
): Omit<TraceSpan, 'flags'> {
  return {
    traceId: run.traceId,
    spanId,
    parentSpanId,
    name: `run_guardrail ${name}`,
    kind: 'guardrail',
    startTime: at,
    endTime: at,
    status: 'ok',
    statusMessage: null,
    attributes,
    events: [],
  };
}
