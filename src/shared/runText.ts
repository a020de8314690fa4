import { compactArgs, truncate } from './format';

/**
 * Runs and steps in words, the same in the CLI, the runtime's messages, the editor and its
 * webviews. It reads records by their shape alone (the store's and the protocol's both fit), so it
 * imports neither.
 */

export type RunStateName = 'running' | 'interrupted' | 'waiting_approval' | 'completed' | 'failed' | 'cancelled' | 'budget_exceeded';

/** How each run state reads for a person. */
export const RUN_STATE_LABELS: Readonly<Record<RunStateName, string>> = {
  running: 'running',
  interrupted: 'interrupted',
  waiting_approval: 'waiting for a decision',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  budget_exceeded: 'stopped at its budget',
};

interface RunTimes {
  readonly state: RunStateName;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
}

/** A run has stopped in every state but `running`: it ended, paused for a decision, or was interrupted. */
export function isStopped(run: { readonly state: RunStateName }): boolean {
  return run.state !== 'running';
}

/** From its start until it ended, stopped, or (while it runs) `now`. */
export function runDuration(run: RunTimes, now: number = Date.now()): number {
  return (run.endedAt ?? (run.state === 'running' ? now : run.updatedAt)) - run.createdAt;
}

export function totalTokens(run: { readonly usage: { readonly inputTokens: number; readonly outputTokens: number } }): number {
  return run.usage.inputTokens + run.usage.outputTokens;
}

interface StepFacts {
  readonly kind: 'model' | 'tool';
  readonly name: string;
  readonly status: 'in_progress' | 'completed' | 'failed';
  readonly output: unknown;
  readonly error: string | null;
}

/** What a completed model step's output says, as far as a description reads it. */
interface ModelAnswer {
  readonly message: { readonly content: string | null; readonly toolCalls: readonly { readonly name: string; readonly arguments: string }[] };
}

/** What a step did, in one line: the model's answer or tool calls, or the tool's result. */
export function describeStep(step: StepFacts, max = 100): string {
  if (step.status === 'in_progress') return step.kind === 'model' ? 'thinking…' : `${step.name}(…)`;
  if (step.kind === 'model') {
    if (step.status === 'failed') return `failed: ${step.error ?? 'unknown error'}`;
    const { message } = step.output as ModelAnswer;
    const calls = message.toolCalls.map((call) => `${call.name}(${compactArguments(call.arguments)})`);
    if (calls.length > 0) return truncate(calls.join(', '), max);
    return truncate(JSON.stringify(message.content ?? ''), max);
  }
  return truncate(`${step.name} ${stepOutcome(step, Number.MAX_SAFE_INTEGER)}`, max);
}

/**
 * What a step did, for a row that names its tool already: `→ [...]`, `✗ Invalid arguments`,
 * `running…`; a model step as `describeStep` says.
 */
export function stepOutcome(step: StepFacts, max = 100): string {
  if (step.kind === 'model') return describeStep(step, max);
  if (step.status === 'in_progress') return 'running…';
  if (step.status === 'failed') return truncate(`✗ ${step.error ?? 'failed'}`, max);
  const output = step.output as { content?: string } | null;
  return truncate(`→ ${output?.content ?? ''}`, max);
}

function compactArguments(raw: string): string {
  try {
    return compactArgs(JSON.parse(raw) as unknown);
  } catch {
    // The model wrote invalid JSON: show it as written.
    return raw;
  }
}
