import type { ModelResponse } from '../model/model';
import { budgetAt, type Position, type Timeline } from './timeline';

/**
 * What the debugger shows of a step, as plain JSON: the Variables view's scopes, and the names a
 * Debug Console expression or a breakpoint condition can use.
 */
export interface StepView {
  /** The step: which run, which call, how it went. */
  readonly step: Readonly<Record<string, unknown>>;
  /** The model's answer (a model step). */
  readonly output?: ModelResponse | null;
  /** The tool's arguments as the model wrote them, parsed when they are JSON (a tool step). */
  readonly args?: unknown;
  /** What the tool returned, as it returned it (a tool step); null until it ran, or when it failed. */
  readonly result?: unknown;
  /** The text the model read of the tool's result (a tool step); null until it ran, or when it failed. */
  readonly content?: string | null;
  /** Why the tool call failed (a tool step); null unless it failed. */
  readonly error?: string | null;
  /** The conversation so far: what a model step sends, or a tool step's context. */
  readonly messages?: readonly unknown[];
  /** The run's limits, what it had spent with this step, what was left. */
  readonly budget: Readonly<Record<string, unknown>>;
  /** What the failure detectors flagged on this step, and on the run as a whole at its last step. */
  readonly flags: readonly unknown[];
  /** The loop's state at this step. */
  readonly state: Readonly<Record<string, unknown>>;
}

/** The names of a view's parts: what expressions and conditions read. */
export const STEP_VIEW_NAMES = ['step', 'output', 'args', 'result', 'content', 'error', 'messages', 'budget', 'flags', 'state'] as const satisfies readonly (keyof StepView)[];

/** The view of a position; `messages` only when asked for, since it grows with the run. */
export function stepView(timeline: Timeline, position: Position, options: { readonly messages?: boolean } = {}): StepView {
  const { run, step } = position;
  const record = run.run;
  const isLast = run.indices.at(-1) === position.index;
  const flags = [...run.flagsOf(position.seq, timeline), ...(isLast ? run.flagsOf(null, timeline) : [])].map(({ kind, severity, message }) => ({
    kind,
    severity,
    message,
  }));
  const stepFacts: Record<string, unknown> = {
    runId: record.id,
    agent: record.agent,
    seq: position.seq,
    kind: position.kind,
    name: position.name,
    status: step?.status ?? 'not executed yet',
    error: step?.error ?? null,
    attempts: step?.attempts ?? 0,
    startedAt: step ? new Date(step.startedAt).toISOString() : null,
    endedAt: step?.endedAt ? new Date(step.endedAt).toISOString() : null,
    durationMs: step?.endedAt ? step.endedAt - step.startedAt : null,
    idempotencyKey: step?.idempotencyKey ?? null,
  };
  const view: { -readonly [K in keyof StepView]: StepView[K] } = {
    step: stepFacts,
    budget: budgetAt(record.budget, position.spent),
    flags,
    state: loopState(timeline, position),
  };
  if (position.kind === 'model') {
    view.output = step?.status === 'completed' ? (step.output as ModelResponse) : null;
  } else {
    view.args = parseArguments(position.call?.arguments ?? '');
    const output = step?.output as { content?: string; value?: unknown } | null | undefined;
    const completed = step?.status === 'completed';
    view.result = completed ? (output?.value ?? null) : null;
    view.content = completed ? (output?.content ?? '') : null;
    view.error = step?.status === 'failed' ? step.error : null;
  }
  if (options.messages) view.messages = run.messages.slice(0, position.messageCount);
  return view;
}

/** The loop's state at a position: where the run is, and what the agent has done so far. */
function loopState(timeline: Timeline, position: Position): Record<string, unknown> {
  const { run, step } = position;
  const record = run.run;
  const state: Record<string, unknown> = {
    agent: record.agent,
    runId: record.id,
    input: record.input,
    turn: position.turn,
    step: position.seq,
    stepsBefore: position.ordinal,
    messages: position.messageCount,
  };
  if (position.kind === 'tool' && position.call) {
    const asked = run.messages[position.messageCount - 1 - toolMessagesBefore(position)];
    const calls = asked?.role === 'assistant' ? asked.toolCalls : [];
    const index = calls.findIndex((call) => call.id === position.call?.id);
    if (index >= 0) state['toolCall'] = { index, of: calls.length };
  }
  if (position.kind === 'model' && step?.status === 'completed') {
    const { message } = step.output as ModelResponse;
    if (message.toolCalls.length === 0) state['answer'] = message.content ?? '';
  }
  if (run.parent) state['subAgentOf'] = { runId: run.parent.run.run.id, step: run.parent.seq };
  if (position.divergence) state['diverged'] = position.divergence;
  if (run.indices.at(-1) === position.index) {
    state['runState'] = record.state;
    if (run.outcome) state['replay'] = run.outcome;
  }
  if (run.unchecked) state['unchecked'] = run.unchecked;
  state['sessionStep'] = `${position.index + 1} of ${timeline.positions.length}`;
  return state;
}

/** Tool results of the same turn before this tool step. */
function toolMessagesBefore(position: Position): number {
  let count = 0;
  for (let i = position.messageCount - 1; i >= 0 && position.run.messages[i]?.role === 'tool'; i--) count += 1;
  return count;
}

function parseArguments(raw: string): unknown {
  try {
    return raw.trim() === '' ? {} : (JSON.parse(raw) as unknown);
  } catch {
    return raw;
  }
}
