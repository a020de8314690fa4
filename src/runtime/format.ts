import type { ModelResponse } from './model/model';
import type { RunRecord, RunState, StepRecord } from './store/checkpointStore';

/** Human-readable one-liners for runs and steps, shared by the CLI and the editor. */

/** How each run state reads for a person. */
export const RUN_STATE_LABELS: Readonly<Record<RunState, string>> = {
  running: 'running',
  interrupted: 'interrupted',
  waiting_approval: 'waiting for a decision',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  budget_exceeded: 'stopped at its budget',
};

export function formatDuration(ms: number): string {
  // Each range is chosen by the value as it will be shown, so rounding never gives "1000 ms",
  // "60.0 s" or "1 min 60 s".
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.round(ms / 100) < 600) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

export function runDuration(run: RunRecord, now: number = Date.now()): number {
  return (run.endedAt ?? (run.state === 'running' ? now : run.updatedAt)) - run.createdAt;
}

export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** What a step did, in one line: the model's answer or tool calls, or the tool's result. */
export function describeStep(step: StepRecord, max = 100): string {
  if (step.status === 'in_progress') return step.kind === 'model' ? 'thinking…' : `${step.name}(…)`;
  if (step.kind === 'model') {
    if (step.status === 'failed') return `failed: ${step.error ?? 'unknown error'}`;
    const response = step.output as ModelResponse;
    const calls = response.message.toolCalls.map((call) => `${call.name}(${compactArguments(call.arguments)})`);
    if (calls.length > 0) return truncate(calls.join(', '), max);
    return truncate(JSON.stringify(response.message.content ?? ''), max);
  }
  if (step.status === 'failed') return truncate(`${step.name} ✗ ${step.error ?? 'failed'}`, max);
  const output = step.output as { content?: string } | null;
  return truncate(`${step.name} → ${output?.content ?? ''}`, max);
}

export function totalTokens(run: RunRecord): number {
  return run.usage.inputTokens + run.usage.outputTokens;
}

function compactArguments(raw: string): string {
  try {
    return compactArgs(JSON.parse(raw) as unknown);
  } catch {
    // The model wrote invalid JSON: show it as written.
    return raw;
  }
}

/** `flightId: "UA66", price: 598`: arguments in one line, for a person. */
export function compactArgs(args: unknown): string {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return JSON.stringify(args) ?? '';
  return Object.entries(args)
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}`)
    .join(', ');
}
