import { randomBytes } from 'node:crypto';
import type { Agent } from '../agent/define';
import { PROCESS_OWNER } from '../agent/owner';
import { checkLimits, type BudgetLimits } from '../budget/budget';
import { KeelError, describeError } from '../errors';
import { readToolResultGuard } from '../guard/record';
import { newRunId } from '../ids';
import type { ModelResponse, ToolCall } from '../model/model';
import type { CheckpointStore, RunRecord, StepEnd, StepRecord, StepStart } from '../store/checkpointStore';
import type { Recording } from './recording';
import { reexecuteRecording } from './recordingStore';
import { replayRecording } from './replay';

export interface ForkRequest {
  readonly runId: string;
  /** The step to fork at: the fork keeps the steps before it, and this one as the document says. */
  readonly seq: number;
  /** The step's result, edited (see forkDocument); the step as recorded when absent. */
  readonly document?: string;
}

/** A step's result as a person edits it before a fork. */
export type ForkEdit =
  | { readonly kind: 'tool'; readonly result: unknown; readonly error?: undefined }
  | { readonly kind: 'tool'; readonly error: string }
  | { readonly kind: 'model'; readonly content: string | null; readonly toolCalls: readonly ToolCall[] };

/** The parsed document: the step's new result, and the fork's budget (absent: the run's own). */
export interface ForkDocument {
  readonly edit: ForkEdit;
  readonly budget?: BudgetLimits | null;
}

/**
 * The JSON (with comments) a person edits to fork a run at a step: a tool step's `result` (or
 * `error`), or a model step's `content` and `toolCalls`; and the fork's `budget`.
 */
export function forkDocument(run: RunRecord, step: StepRecord): string {
  const header = [
    `// Fork of run ${run.id} (${run.agent}) at step ${step.seq}: ${step.kind === 'tool' ? `the call to ${step.name}` : 'the model call'}.`,
    '// The fork is a new run: it keeps the steps before this one, takes this step as written here,',
    '// then goes on live (models and tools are really called).',
    step.kind === 'tool'
      ? '// Edit "result" (what the tool returned), or replace it with "error": "..." to make the call fail.'
      : '// Edit "content" (what the model said) and "toolCalls" (each { "name", "arguments" }).',
    '// "budget" holds the fork\'s limits (tokens, usd, steps, wallTimeMs...); null for none.',
  ];
  let body: Record<string, unknown>;
  if (step.kind === 'tool') {
    const output = step.output as { value?: unknown; content?: string } | null;
    body =
      step.status === 'failed'
        ? { error: step.error ?? 'failed' }
        : { result: output?.value !== undefined ? output.value : (output?.content ?? null) };
  } else {
    const message = step.status === 'completed' ? (step.output as ModelResponse).message : null;
    body = {
      content: message?.content ?? null,
      toolCalls: (message?.toolCalls ?? []).map((call) => ({ name: call.name, arguments: parseArguments(call.arguments) })),
    };
  }
  body['budget'] = run.budget;
  return `${header.join('\n')}\n${JSON.stringify(body, null, 2)}\n`;
}

/** Reads an edited fork document; throws a KeelError that says what is wrong. */
export function parseForkDocument(text: string, step: StepRecord): ForkDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\s*\/\/.*$/gm, ''));
  } catch (error) {
    throw new KeelError(`The fork document is not valid JSON: ${describeError(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KeelError('The fork document must be one JSON object.');
  const fields = parsed as Record<string, unknown>;
  let budget: BudgetLimits | null | undefined;
  if ('budget' in fields) {
    const value = fields['budget'];
    if (value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new KeelError('"budget" must be an object of limits, or null.');
    try {
      budget = value === null ? null : checkLimits(value as BudgetLimits, 'The fork document');
    } catch (error) {
      throw new KeelError(describeError(error));
    }
  }
  const withBudget = (edit: ForkEdit): ForkDocument => (budget === undefined ? { edit } : { edit, budget });
  if (step.kind === 'tool') {
    if ('error' in fields) {
      if ('result' in fields) throw new KeelError('Give either "result" or "error", not both.');
      if (typeof fields['error'] !== 'string' || fields['error'].trim() === '') throw new KeelError('"error" must be a non-empty string.');
      return withBudget({ kind: 'tool', error: fields['error'] });
    }
    if (!('result' in fields)) throw new KeelError('Give the tool\'s "result" (or an "error").');
    return withBudget({ kind: 'tool', result: fields['result'] });
  }
  const content = fields['content'] ?? null;
  if (content !== null && typeof content !== 'string') throw new KeelError('"content" must be a string or null.');
  const calls = fields['toolCalls'] ?? [];
  if (!Array.isArray(calls)) throw new KeelError('"toolCalls" must be a list of { "name", "arguments" }.');
  const recorded = step.status === 'completed' ? (step.output as ModelResponse).message.toolCalls : [];
  const toolCalls = calls.map((call: unknown, index): ToolCall => {
    const { name, arguments: args } = (typeof call === 'object' && call !== null ? call : {}) as { name?: unknown; arguments?: unknown };
    if (typeof name !== 'string' || name === '') throw new KeelError(`toolCalls[${index}] needs a "name".`);
    return {
      id: recorded[index]?.id ?? `call_fork_${step.seq}_${index + 1}`,
      name,
      arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
    };
  });
  if (content === null && toolCalls.length === 0) throw new KeelError('A model step needs "content" or at least one tool call.');
  return withBudget({ kind: 'model', content, toolCalls });
}

/**
 * Records a fork of a run at a step: a new run (new id, new trace) of the same agent and input
 * whose journal is the original's before that step, then that step with the edited result. It is
 * left interrupted, so resuming it (Runtime.resume, with `agent`) replays that journal and goes on
 * live from there. Only top-level runs outside threads and tasks can be forked; the fork's budget
 * counts what it spends from the fork on.
 */
export async function forkRun(store: CheckpointStore, request: ForkRequest, agent: Agent, now: () => number = Date.now): Promise<RunRecord> {
  const original = await store.getRun(request.runId);
  if (!original) throw new KeelError(`There is no run ${request.runId} in ${store.location}.`);
  if (original.parentRunId !== null) {
    throw new KeelError(`Run ${original.id} is a sub-agent run of ${original.parentRunId}: fork its parent at step ${original.parentSeq ?? '?'} instead.`);
  }
  if (original.threadId || original.taskId) {
    throw new KeelError(`Run ${original.id} belongs to a ${original.threadId ? 'thread' : 'task'}, whose memory a fork would not share; such runs cannot be forked yet.`);
  }
  if (!original.agentFile) throw new KeelError(`Run ${original.id} was not started from an agent file, so a fork of it could not run.`);
  if (agent.name !== original.agent) throw new KeelError(`Run ${original.id} belongs to agent "${original.agent}", not "${agent.name}".`);
  const steps = await store.getSteps(original.id);
  const target = steps.find((step) => step.seq === request.seq);
  if (!target) throw new KeelError(`Run ${original.id} has no step ${request.seq}.`);
  const kept = steps.filter((step) => step.seq < request.seq);
  const unfinished = kept.find((step) => step.status === 'in_progress');
  if (unfinished) throw new KeelError(`Step ${unfinished.seq} of run ${original.id} never finished, so the run cannot be forked after it.`);
  const document = request.document === undefined ? undefined : parseForkDocument(request.document, target);
  if (!document && target.status === 'in_progress') throw new KeelError(`Step ${target.seq} never finished: give its result to fork there.`);

  await checkAgainst(agent, { run: { ...original, state: 'interrupted' }, steps: [...kept, target], approvals: [], effects: [], children: new Map() });

  const at = now();
  const budget = document?.budget === undefined ? original.budget : document.budget;
  const fork: RunRecord = { ...original, id: newRunId(at), traceId: randomBytes(16).toString('hex'), createdAt: at, budget };
  const copied = [...kept, document ? edited(target, document.edit) : target].map((step) => asForkStep(fork.id, original.id, step));
  await rehash(fork, copied, agent);
  await store.createRun({
    id: fork.id,
    agent: fork.agent,
    agentFile: fork.agentFile,
    model: fork.model,
    input: fork.input,
    traceId: fork.traceId,
    owner: PROCESS_OWNER,
    createdAt: at,
    ...(fork.agentFacts ? { agentFacts: fork.agentFacts } : {}),
    ...(budget ? { budget } : {}),
  });
  let pending: StepEnd | undefined;
  for (const step of copied) {
    await store.transition({ ...(pending ? { end: pending } : {}), begin: beginOf(step) });
    pending = endOf(step);
  }
  if (pending) await store.transition({ end: pending });
  return store.finishRun({
    runId: fork.id,
    state: 'interrupted',
    result: null,
    error: `Forked from run ${original.id} at step ${request.seq}; it goes on when resumed.`,
    endedAt: null,
    at: now(),
  });
}

/** Refuses a fork whose agent no longer matches the run up to the fork point: the copied steps would not hold. */
async function checkAgainst(agent: Agent, recording: Recording): Promise<void> {
  const replayed = await replayRecording(recording, { agents: new Map([[agent.name, agent]]) });
  const { run } = recording;
  const unchecked = replayed.root?.unchecked;
  if (unchecked) throw new KeelError(`Run ${run.id} cannot be forked: ${unchecked}.`);
  const diverged = replayed.positions.find((position) => position.divergence !== null);
  if (diverged) throw new KeelError(`Run ${run.id} cannot be forked there: its agent no longer matches it at step ${diverged.seq}. ${diverged.divergence ?? ''}`);
}

/**
 * Sets each copied model step's request hash to the one the fork's own conversation has: what
 * a step sends can depend on the run (the guard fences tool results with ids of its trace), and
 * a resume checks it. The agent's code runs over the copied journal, exactly as a resume would
 * (no model or tool is called), and each model step takes the hash the runtime computes for it.
 */
async function rehash(fork: RunRecord, steps: readonly ForkStep[], agent: Agent): Promise<void> {
  const bySeq = new Map(steps.map((step) => [step.seq, step]));
  const last = steps.at(-1)?.seq ?? 0;
  const recording: Recording = { run: { ...fork, state: 'interrupted' }, steps, approvals: [], effects: [], children: new Map() };
  const { end, refused } = await reexecuteRecording(recording, agent, {
    beforeStep(info) {
      const step = bySeq.get(info.seq);
      if (info.seq > last || !step) throw new KeelError('The fork point is reached.');
      if (step.kind === 'model' && info.requestHash !== null) step.input = { ...(step.input as object), requestHash: info.requestHash };
    },
  });
  if (refused) throw new KeelError(`Run ${fork.id} cannot be forked: its agent needs ${refused}(), which a fork cannot copy.`);
  if (end?.state === 'interrupted') throw new KeelError(`The agent no longer matches the run, so it cannot be forked: ${end.error ?? ''}`);
}

/** A copied step: the fork's own record of it, whose request hash rehash() may still set. */
type ForkStep = Omit<StepRecord, 'input'> & { input: unknown };

function asForkStep(runId: string, originalId: string, step: StepRecord): ForkStep {
  const key = step.idempotencyKey;
  return { ...step, runId, idempotencyKey: key?.startsWith(`${originalId}:`) ? `${runId}${key.slice(originalId.length)}` : key };
}

/**
 * The step with the edited result in place of the recorded one. A tool result keeps how the guard
 * treats the tool's output (its channel, whether the model reads it fenced, the decision on the
 * call's arguments), not what the injection screen found in the old result.
 */
function edited(step: StepRecord, edit: ForkEdit): StepRecord {
  if (edit.kind === 'tool') {
    const recorded = readToolResultGuard(step.output);
    const guard = {
      ...(recorded.channel ? { channel: recorded.channel } : {}),
      ...(recorded.guard ? { guard: { fenced: recorded.guard.fenced, ...(recorded.guard.taint ? { taint: recorded.guard.taint } : {}) } } : {}),
    };
    if (edit.error !== undefined) return { ...step, status: 'failed', output: { content: `Error: ${edit.error}`, ...guard }, error: edit.error };
    const content = typeof edit.result === 'string' ? edit.result : (JSON.stringify(edit.result) ?? 'null');
    return { ...step, status: 'completed', output: { content, value: edit.result, ...guard }, error: null };
  }
  const recorded = step.status === 'completed' ? (step.output as ModelResponse) : undefined;
  const response: ModelResponse = {
    message: { role: 'assistant', content: edit.content, toolCalls: edit.toolCalls },
    finishReason: edit.toolCalls.length > 0 ? 'tool_calls' : 'stop',
    usage: recorded?.usage ?? { inputTokens: 0, outputTokens: 0 },
    model: recorded?.model ?? step.name,
  };
  return { ...step, status: 'completed', output: response, error: null };
}

function beginOf(step: ForkStep): StepStart {
  return { runId: step.runId, seq: step.seq, kind: step.kind, name: step.name, input: step.input, idempotencyKey: step.idempotencyKey, startedAt: step.startedAt };
}

function endOf(step: ForkStep): StepEnd {
  const usage = step.kind === 'model' && step.status === 'completed' ? (step.output as ModelResponse).usage : { inputTokens: 0, outputTokens: 0 };
  return {
    runId: step.runId,
    seq: step.seq,
    status: step.status === 'completed' ? 'completed' : 'failed',
    output: step.output,
    error: step.error,
    endedAt: step.endedAt ?? step.startedAt,
    usage,
    ...(step.kind === 'model' ? { costUsd: step.costUsd } : {}),
  };
}

function parseArguments(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
