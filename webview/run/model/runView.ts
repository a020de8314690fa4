import type { RunEvent } from '../../../src/protocol/events';
import type { Run, Step } from '../../../src/protocol/records';
import { MCP_SERVER_ATTRIBUTE } from '../../../src/shared/spanAttributes';
import { formatDuration } from '../../../src/shared/format';
import { runDuration, stepOutcome, totalTokens } from '../../../src/shared/runText';

/** The Run view's state and the pure logic that shapes it; the DOM code only draws this. */

export interface RunViewModel {
  readonly run: Run;
  readonly steps: readonly Step[];
}

export interface Fact {
  readonly label: string;
  readonly value: string;
}

export interface StepRow {
  readonly key: string;
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  readonly status: Step['status'];
  readonly title: string;
  /** The MCP server a tool step's tool came from, when it came from one. */
  readonly server: string | null;
  readonly summary: string;
  readonly duration: string;
  readonly sections: readonly { readonly label: string; readonly text: string }[];
}

/**
 * Applies one live event to the model. Events of other runs, and events older than what the model
 * already shows (a step that started after it finished, a run that started after it stopped), leave
 * it unchanged, so events may arrive twice or around a fresh snapshot without harm. A stopped run
 * goes back to running only when it is resumed, which makes its record newer.
 */
export function applyEvent(model: RunViewModel, event: RunEvent): RunViewModel {
  switch (event.type) {
    case 'run_started':
    case 'run_finished': {
      if (event.run.id !== model.run.id) return model;
      const stale = event.run.state === 'running' && model.run.state !== 'running' && event.run.updatedAt <= model.run.updatedAt;
      return stale ? model : { ...model, run: event.run };
    }
    case 'step_started':
    case 'step_finished': {
      const incoming = event.step;
      if (incoming.runId !== model.run.id) return model;
      const current = model.steps.find((step) => step.seq === incoming.seq);
      if (current && current.status !== 'in_progress' && incoming.status === 'in_progress') return model;
      const steps = model.steps.filter((step) => step.seq !== incoming.seq);
      steps.push(incoming);
      steps.sort((a, b) => a.seq - b.seq);
      // Steps finish in order, so a finished step's number is the count of finished steps.
      const stepCount = incoming.status === 'in_progress' ? model.run.stepCount : Math.max(model.run.stepCount, incoming.seq);
      return { run: { ...model.run, stepCount }, steps };
    }
    case 'model_delta':
    case 'step_retry':
    case 'tool_log':
    case 'approval_requested':
    case 'budget_warning':
    case 'provider_overrun':
      return model;
  }
}

export function runFacts(run: Run, now: number): Fact[] {
  return [
    { label: 'State', value: run.state },
    { label: 'Duration', value: formatDuration(runDuration(run, now)) },
    { label: 'Steps', value: String(run.stepCount) },
    { label: 'Tokens', value: `${totalTokens(run)} (${run.usage.inputTokens} in, ${run.usage.outputTokens} out)` },
    { label: 'Model', value: run.model },
    { label: 'Run', value: run.id },
  ];
}

export function stepRows(steps: readonly Step[]): StepRow[] {
  return steps.map((step) => ({
    key: `${step.runId}:${step.seq}`,
    seq: step.seq,
    kind: step.kind,
    status: step.status,
    title: step.kind === 'model' ? 'model' : step.name,
    server: step.kind === 'tool' ? mcpServerOf(step) : null,
    summary: stepOutcome(step, 140),
    duration: step.endedAt === null ? '' : formatDuration(step.endedAt - step.startedAt),
    sections: [
      { label: 'Input', text: pretty(step.input) },
      ...(step.output === null ? [] : [{ label: 'Output', text: pretty(withoutStack(step.output)) }]),
      ...(step.error === null ? [] : [{ label: 'Error', text: step.error }]),
      ...stackOf(step.output).map((text) => ({ label: 'Stack', text })),
      ...(step.idempotencyKey === null ? [] : [{ label: 'Idempotency key', text: step.idempotencyKey }]),
    ],
  }));
}

/** The stack of the error a tool threw, as a failed step's output keeps it (`exception`), if any. */
function stackOf(output: unknown): string[] {
  const exception: unknown = typeof output === 'object' && output !== null ? (output as { exception?: unknown }).exception : undefined;
  const stack: unknown = typeof exception === 'object' && exception !== null ? (exception as { stacktrace?: unknown }).stacktrace : undefined;
  return typeof stack === 'string' ? [stack] : [];
}

/** A step's output with its thrown error's stack left to the Stack section, where its lines read as lines. */
function withoutStack(output: unknown): unknown {
  if (stackOf(output).length === 0) return output;
  const { exception, ...rest } = output as { exception: { type: string } };
  return { ...rest, exception: { type: exception.type } };
}

/** The server an MCP tool step's output names (its call's annotations), if any. */
function mcpServerOf(step: Step): string | null {
  const output = step.output;
  if (typeof output !== 'object' || output === null) return null;
  const attributes: unknown = (output as { attributes?: unknown }).attributes;
  if (typeof attributes !== 'object' || attributes === null) return null;
  const server: unknown = (attributes as Record<string, unknown>)[MCP_SERVER_ATTRIBUTE];
  return typeof server === 'string' ? server : null;
}

export function outcome(run: Run): { readonly kind: 'result' | 'error' | 'pending'; readonly text: string } {
  if (run.state === 'completed') return { kind: 'result', text: run.result ?? '' };
  if (run.state === 'running') return { kind: 'pending', text: 'Running…' };
  return { kind: 'error', text: run.error ?? run.state };
}

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}
