import type { ApprovalRecord } from '../store/checkpointStore';
import { readJournal, record, type ModelTurn, type ToolCallStep, type TraceSource } from './journalView';
import type { Redactor } from './redact';

/**
 * The audit log: every decision a model made in a run (each model step that chose tools or
 * answered), what it was offered, what it chose, what it said about why and how sure it was, and
 * what came of it. Read from the journal, so it covers every recorded run.
 */

export interface AuditApproval {
  readonly id: string;
  readonly kind: string;
  readonly status: string;
  /** `approve`, `reject`, `retry`, `done` or `fail`; null while pending. */
  readonly decision: string | null;
  readonly decidedBy: string | null;
}

export interface AuditCall {
  readonly tool: string;
  readonly toolCallId: string;
  /** The arguments as the model wrote them. */
  readonly arguments: string;
  /** A `confidence` the arguments carried, when they did. */
  readonly confidence: number | string | null;
  /** The journal step of the call; null when the run stopped before it. */
  readonly seq: number | null;
  readonly outcome: 'ok' | 'error' | 'in_progress' | 'not_run';
  readonly error: string | null;
  readonly approvals: readonly AuditApproval[];
}

export interface AuditDecision {
  readonly runId: string;
  readonly agent: string;
  /** The model step. */
  readonly seq: number;
  /** When the model answered. */
  readonly at: number;
  readonly model: string;
  readonly offered: readonly string[];
  readonly kind: 'tool_calls' | 'answer';
  readonly calls: readonly AuditCall[];
  /** The text that came with the tool calls: the model's stated reasoning, when it gave one. */
  readonly reasoning: string | null;
  /** A confidence the model stated in its text (`confidence: 0.8`, `90% sure`). */
  readonly confidence: number | string | null;
  /** The final answer, for a decision to answer. */
  readonly answer: string | null;
}

export function auditRun(source: TraceSource, redactor: Redactor): AuditDecision[] {
  const view = readJournal(source);
  const decisions: AuditDecision[] = [];
  for (const turn of view.turns) {
    const response = turn.response;
    if (!response) continue;
    const text = response.message.content;
    const calls = response.message.toolCalls;
    decisions.push({
      runId: source.run.id,
      agent: source.run.agent,
      seq: turn.step.seq,
      at: turn.step.endedAt ?? turn.step.startedAt,
      model: response.model || turn.model,
      offered: turn.offered,
      kind: calls.length > 0 ? 'tool_calls' : 'answer',
      calls: calls.map((call, index) => auditCall(call, index, turn, view.calls, source.approvals)),
      reasoning: calls.length > 0 && text && text.trim() !== '' ? text : null,
      confidence: statedConfidence(text ?? ''),
      answer: calls.length === 0 ? (text ?? '') : null,
    });
  }
  return redactor.redactValue(decisions);
}

/** The decisions that selected `tool`. */
export function decisionsUsing(decisions: readonly AuditDecision[], tool: string): AuditDecision[] {
  return decisions.filter((decision) => decision.calls.some((call) => call.tool === tool));
}

function auditCall(
  call: { readonly id: string; readonly name: string; readonly arguments: string },
  index: number,
  turn: ModelTurn,
  steps: readonly ToolCallStep[],
  approvals: readonly ApprovalRecord[],
): AuditCall {
  const ofTurn = steps.filter((step) => step.turnSeq === turn.step.seq);
  const step = ofTurn.find((candidate) => candidate.toolCallId === call.id && call.id !== '') ?? ofTurn[index];
  const outcome = step === undefined ? 'not_run' : step.ok === null ? 'in_progress' : step.ok ? 'ok' : 'error';
  return {
    tool: call.name,
    toolCallId: call.id,
    arguments: call.arguments,
    confidence: argumentConfidence(call.arguments),
    seq: step?.step.seq ?? null,
    outcome,
    error: step?.ok === false ? (step.step.error ?? null) : null,
    approvals: step
      ? approvals
          .filter((approval) => approval.seq === step.step.seq)
          .map((approval) => {
            const action = record(approval.decision)['action'];
            return {
              id: approval.id,
              kind: approval.kind,
              status: approval.status,
              decision: typeof action === 'string' ? action : null,
              decidedBy: approval.decidedBy,
            };
          })
      : [],
  };
}

function argumentConfidence(raw: string): number | string | null {
  try {
    const stated = record(JSON.parse(raw) as unknown)['confidence'];
    return typeof stated === 'number' || typeof stated === 'string' ? stated : null;
  } catch {
    return null;
  }
}

/** `confidence: 0.8`, `confidence of 90%`, `I am 90% sure`: the first confidence stated in `text`. */
export function statedConfidence(text: string): number | string | null {
  const named = /\bconfiden(?:ce|t)\b\D{0,20}?(\d+(?:\.\d+)?\s?%?)/i.exec(text);
  const percent = /(\d{1,3}(?:\.\d+)?)\s?%\s+(?:sure|confident|certain)\b/i.exec(text);
  const found = named?.[1] ?? (percent ? `${percent[1]}%` : undefined);
  if (found === undefined) return null;
  const value = found.replace(/\s/g, '');
  return value.endsWith('%') ? value : Number(value);
}
