import { RUN_STATE_LABELS, totalTokens } from '../format';
import type { ModelResponse, ToolCall } from '../model/model';
import type { RunRecord, StepKind, StepRecord } from '../store/checkpointStore';

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
 * with its arguments and result, then how the run ended. A step's block never changes once the
 * step has ended, and blocks only ever follow each other, so a step keeps its line as the run
 * goes on. Nothing depends on time, so a run and its fork differ only where their steps do.
 */
export function renderTranscript(
  run: RunRecord,
  steps: readonly TranscriptStep[],
  children: ReadonlyMap<number, readonly RunRecord[]> = new Map(),
): Transcript {
  const out: string[] = [`${run.agent} · ${run.model}`];
  const lines = new Map<number, number>();
  if (run.parentRunId) out.push(`sub-agent run of ${run.parentRunId}, step ${run.parentSeq ?? '?'}`);
  out.push('input:', ...indent(run.input), '');
  for (const entry of steps) {
    lines.set(entry.seq, out.length + 1);
    out.push(`step ${entry.seq} · ${entry.kind === 'model' ? `model ${entry.name}` : `tool ${entry.name}`}`);
    out.push(...(entry.kind === 'model' ? modelBlock(entry.step) : toolBlock(entry)));
    for (const child of children.get(entry.seq) ?? []) out.push(`  sub-agent ${child.agent}: ${child.id}`);
  }
  out.push('', `${RUN_STATE_LABELS[run.state]} · ${run.stepCount} steps · ${totalTokens(run)} tokens`);
  if (run.result !== null) out.push('answer:', ...indent(run.result));
  if (run.error !== null) out.push('error:', ...indent(run.error));
  return { text: `${out.join('\n')}\n`, lines };
}

/** The transcript of a run from its journal alone. */
export function transcriptOf(run: RunRecord, steps: readonly StepRecord[], children?: ReadonlyMap<number, readonly RunRecord[]>): Transcript {
  return renderTranscript(
    run,
    steps.map((step) => ({ seq: step.seq, kind: step.kind, name: step.name, call: null, step })),
    children,
  );
}

function modelBlock(step: StepRecord | null): string[] {
  if (!step) return ['  (about to call the model)'];
  if (step.status === 'in_progress') return ['  (in progress)'];
  if (step.status === 'failed') return [`  failed: ${oneLine(step.error ?? 'unknown error')}`];
  const { message } = step.output as ModelResponse;
  const said = message.content ? ['  says:', ...indent(message.content, '    ')] : [];
  return [...said, ...message.toolCalls.map((call) => `  calls ${call.name} ${call.arguments}`)];
}

function toolBlock(entry: TranscriptStep): string[] {
  const { step } = entry;
  const input = (step?.input ?? null) as { arguments?: unknown } | null;
  const args = typeof input?.arguments === 'string' ? input.arguments : (entry.call?.arguments ?? '');
  const head = [`  arguments: ${oneLine(args)}`];
  if (!step) return [...head, '  (about to run)'];
  if (step.status === 'in_progress') return [...head, '  (in progress)'];
  if (step.status === 'failed') return [...head, `  error: ${oneLine(step.error ?? 'failed')}`];
  const output = step.output as { content?: string } | null;
  return [...head, `  result: ${oneLine(output?.content ?? '')}`];
}

function indent(text: string, prefix = '  '): string[] {
  return text.split(/\r?\n/).map((line) => `${prefix}${line}`);
}

function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n');
}
