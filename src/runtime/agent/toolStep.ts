import { approvalGate, unknownOutcome } from '../approval/gate';
import { argsHash } from '../approval/decide';
import { CircuitOpenError } from '../effects/circuitBreaker';
import { AttemptsExhaustedError, classifyError, type FailedAttempt } from '../effects/retry';
import { describeError } from '../errors';
import { canonicalJson } from '../hash/canonicalJson';
import { guardFields, readToolResultGuard, type ToolResultGuard } from '../guard/record';
import { outputChannelOf } from '../memory/runMemory';
import type { AssistantMessage } from '../model/model';
import type { ApprovalRecord, StepRecord } from '../store/checkpointStore';
import { traceparent } from '../trace/buildTrace';
import type { Agent, Tool, ToolContext } from './define';
import { NO_USAGE, failureMessage } from './modelStep';
import { RunPausedError } from './pause';
import { attemptWithRetries, type RunContext } from './runContext';
import { AttemptInterruptedError } from './steps';
import { checkToolOutput, prepareToolCall, type SpanAttributes, type ToolException, type ToolResult } from './toolCall';
import { capErrorText } from '../sandbox/sandboxError';

/** The reason recorded for a tool call's attempt that paused for a sub-agent. */
const PAUSED = 'paused';

/**
 * One tool call of a run: read back from the journal when the run recorded its end; else checked,
 * put to the approval gate, journaled (an unsafe one durably, before it starts), run under its
 * retry policy and circuit breaker, screened and ended. A call in progress when its process
 * stopped runs again, unless it is unsafe: then a person decides what happened.
 */
export async function toolStep(
  context: RunContext,
  seq: number,
  modelSeq: number,
  callIndex: number,
  call: AssistantMessage['toolCalls'][number],
): Promise<ToolResult | { approval: ApprovalRecord }> {
  const { services, agent, run, journal, steps, guard } = context;
  const idempotencyKey = `${run.id}:${modelSeq}:${callIndex}`;
  const recorded = journal.recorded(seq, 'tool', call.name, () => `a call to ${call.name}`);
  const input = { toolCallId: call.id, arguments: call.arguments };
  if (recorded && !sameToolInput(recorded.input, input)) {
    throw journal.diverged(seq, `the call to ${call.name} has other arguments than the recorded one`);
  }
  if (recorded && recorded.status !== 'in_progress') {
    const output = recorded.output as { content?: string; value?: unknown } | null;
    const guarded = readToolResultGuard(output);
    return recorded.status === 'completed'
      ? { ok: true, value: output?.value, content: output?.content ?? '', ...guarded }
      : { ok: false, error: recorded.error ?? 'failed', ...guarded };
  }

  const begin = (effect?: { tool: Tool; args: unknown }) =>
    steps.begin(
      {
        runId: run.id,
        seq,
        kind: 'tool',
        name: call.name,
        input,
        idempotencyKey,
        startedAt: services.now(),
        ...(!effect || effect.tool.effect === 'none'
          ? {}
          : { effect: { key: idempotencyKey, tool: effect.tool.name, effect: effect.tool.effect, argsHash: argsHash(effect.args) } }),
      },
      // Only an unsafe effect needs its record on disk before it starts: an idempotent one
      // whose record is lost is simply done again under the same key.
      effect?.tool.effect === 'unsafe',
    );
  const prepared = prepareToolCall(agent, call);
  if (!prepared.ok) {
    if (recorded) await steps.restart(recorded);
    else await begin();
    endTool(context, seq, { ok: false, error: prepared.error }, undefined, []);
    return { ok: false, error: prepared.error };
  }
  const { tool } = prepared;
  const effectKey = tool.effect === 'none' ? undefined : idempotencyKey;
  const gate = await approvalGate(context, seq, tool, prepared.args, prepared.confidence, recorded === undefined);
  if (gate.kind === 'waiting') return { approval: gate.approval };
  if (gate.kind === 'rejected') {
    if (recorded) await steps.restart(recorded);
    else await begin();
    const rejected: ToolResult = { ok: false, error: gate.error, ...(gate.taint ? { guard: { fenced: false, taint: gate.taint } } : {}) };
    endTool(context, seq, rejected, undefined, []);
    return rejected;
  }
  const { args } = gate;
  /** A person decides what became of a call in progress (after a crash); undefined when it is to run again. */
  const settle = async (step: StepRecord): Promise<ToolResult | { approval: ApprovalRecord } | undefined> => {
    const decided = await unknownOutcome(context, step, tool, args);
    if (decided.kind === 'waiting') return { approval: decided.approval };
    if (decided.kind === 'retry') return undefined;
    steps.adopt(step);
    endTool(context, step.seq, decided.result, idempotencyKey, step.failedAttempts);
    return decided.result;
  };
  let earlier: FailedAttempt[] = [];
  if (recorded && pausedAttempt(recorded)) {
    // Its last attempt paused for a sub-agent, and no attempt began since: the call goes on, as a new attempt.
    earlier = await steps.resumeAfterPause(recorded, effectKey);
  } else if (recorded) {
    if (tool.effect === 'unsafe') {
      const settled = await settle(recorded);
      if (settled) return settled;
    }
    earlier = await steps.restart(recorded);
  } else {
    await begin({ tool, args });
  }
  let ran: { result: ToolResult; failures: FailedAttempt[] };
  for (;;) {
    try {
      ran = await runTool(context, seq, tool, args, { modelSeq, callIndex, idempotencyKey }, earlier);
      break;
    } catch (error) {
      // An unsafe call that an earlier execution of this step began and never finished: as after a crash, a person decides.
      if (!(error instanceof AttemptInterruptedError) || tool.effect !== 'unsafe') throw error;
      const step = (await services.store.getSteps(run.id)).find((candidate) => candidate.seq === seq);
      if (!step) throw error;
      const settled = await settle(step);
      if (settled) return settled;
      earlier = await steps.restart(step);
    }
  }
  const result: ToolResult = guard.screen(
    tool,
    gate.edited && ran.result.ok
      ? { ...ran.result, content: `A person changed the arguments to ${JSON.stringify(args)} before approving this call. ${ran.result.content}` }
      : ran.result,
    gate.taint,
    args,
  );
  endTool(context, seq, result, effectKey, ran.failures);
  return result;
}

function endTool(context: RunContext, seq: number, result: ToolResult, effectKey: string | undefined, failures: readonly FailedAttempt[]): void {
  const attributes = result.attributes ? { attributes: result.attributes } : {};
  context.steps.end(
    seq,
    {
      ...(result.ok
        ? { status: 'completed', output: { content: result.content, value: result.value, ...guardFields(result), ...attributes }, error: null }
        : // The error is stored once, in `error`: the model's `Error: ...` is made from it when read.
          { status: 'failed', output: failedOutput(result, attributes), error: result.error }),
      usage: NO_USAGE,
      ...optionalKey(effectKey),
    },
    failures,
  );
}

/** What a failed tool step keeps besides its error: what the guard decided and the span's attributes, if any. */
function failedOutput(result: ToolResult, attributes: { attributes?: SpanAttributes }): (ToolResultGuard & { attributes?: SpanAttributes; exception?: ToolException }) | null {
  const kept = { ...guardFields(result), ...attributes, ...(result.exception ? { exception: result.exception } : {}) };
  return Object.keys(kept).length === 0 ? null : kept;
}

/** Runs a tool's attempts until one succeeds or the retry policy gives up; the outcome, as the model will read it. */
async function runTool(
  context: RunContext,
  seq: number,
  tool: Tool,
  args: unknown,
  call: { modelSeq: number; callIndex: number; idempotencyKey: string },
  earlier: readonly FailedAttempt[],
): Promise<{ result: ToolResult; failures: FailedAttempt[] }> {
  const { services, run, steps, signal, emit } = context;
  const failures = [...earlier];
  const annotations: Record<string, string | number | boolean> = {};
  const ctx: Omit<ToolContext, 'subAgent' | 'memory' | 'progress'> = {
    runId: run.id,
    stepId: call.modelSeq,
    callIndex: call.callIndex,
    idempotencyKey: call.idempotencyKey,
    signal,
    log: (message) => emit({ type: 'tool_log', runId: run.id, seq, message: String(message) }),
    traceparent: traceparent(run, seq),
    annotate: (attributes) => Object.assign(annotations, attributes),
  };
  const annotated = (): { attributes?: SpanAttributes } => (Object.keys(annotations).length > 0 ? { attributes: { ...annotations } } : {});
  // Each attempt numbers the sub-agents it starts, in the order it starts them: the first keeps
  // the call's key, the next ones get `key:1`, `key:2`..., so a tool may start several at once
  // and an attempt that runs again continues the same sub-agent runs.
  const attempt = async (): Promise<unknown> => {
    let started = 0;
    const subAgents: Promise<string>[] = [];
    // Memory operations are numbered per attempt too: one that runs again reads what the first read.
    const memory = services.memory.forStep(seq, signal, outputChannelOf(tool));
    const context: ToolContext = {
      ...ctx,
      memory,
      progress: memory.progress,
      subAgent: (agent: Agent, input: string) => {
        const index = started++;
        const answer = services.subAgent(agent, input, seq, index === 0 ? call.idempotencyKey : `${call.idempotencyKey}:${index}`);
        // Held here until the attempt ends, so a tool that does not await it leaves no unhandled rejection.
        answer.catch(() => undefined);
        subAgents.push(answer);
        return answer;
      },
    };
    return afterSubAgents(services.tools.run(tool, args, context), subAgents);
  };
  const breaker = services.breakers.for(`tool ${tool.name}`);
  const effectKey = tool.effect === 'none' ? undefined : call.idempotencyKey;
  try {
    const value = await attemptWithRetries(context, seq, tool.retry, failures, effectKey, async () => {
      try {
        const step = { runId: run.id, seq, kind: 'tool', key: call.idempotencyKey, attempt: failures.length + 1 } as const;
        // Admitted inside the step: a durable engine replaying it takes the breaker's answer from its journal.
        const result = await services.steps.run(tool.effect === 'none' ? step : { ...step, effect: tool.effect }, async () => {
          await breaker.refresh();
          breaker.admit();
          return attempt();
        });
        breaker.succeeded();
        return result;
      } catch (error) {
        if (!signal.aborted && !(error instanceof RunPausedError) && classifyError(error, tool.retry).class === 'retry') breaker.failed();
        throw error;
      }
    });
    return { result: { ...checkToolOutput(tool, value), ...annotated() }, failures };
  } catch (caught) {
    // Not a failure of the call: its process stopped during it. The step stays in progress.
    if (caught instanceof AttemptInterruptedError) throw caught;
    // Not a failure either: the attempt paused for a sub-agent. The step stays in progress, its
    // attempt recorded as paused, and goes on as a new attempt once the sub-agent can.
    if (caught instanceof RunPausedError) {
      failures.push({ attempt: failures.length + 1, error: caught.message, class: 'retry', reason: PAUSED, at: services.now() });
      await steps.recordFailures(seq, failures, effectKey);
      throw caught;
    }
    const error = caught instanceof AttemptsExhaustedError && caught.lastError instanceof CircuitOpenError ? caught.lastError : caught;
    if (signal.aborted || error instanceof CircuitOpenError) {
      const message = failureMessage(error, signal);
      steps.end(seq, { status: 'failed', output: null, error: message, usage: NO_USAGE, ...optionalKey(effectKey) }, failures);
      await steps.flush();
      throw error;
    }
    const last = error instanceof AttemptsExhaustedError ? error.lastError : error;
    const tries = failures.length - earlier.length;
    const error_ = tries > 1 ? `${tool.name} failed after ${tries} attempts: ${describeError(last)}` : `${tool.name} failed: ${describeError(last)}`;
    // A stack with no frames (an error rebuilt from a sandbox's answer) says nothing the step's error does not.
    const frames = last instanceof Error ? stackFrames(last) : '';
    const exception = last instanceof Error && frames !== '' ? { exception: { type: last.name, stacktrace: capErrorText(frames) } } : {};
    return { result: { ok: false, error: error_, ...exception, ...annotated() }, failures };
  }
}

/**
 * Whether a tool step in progress paused for a sub-agent and no attempt began after: its last
 * attempt is recorded as paused, with no wait after it yet. An attempt that began after a pause
 * and never ended (its process died) leaves the pause with its wait: its outcome is unknown.
 */
function pausedAttempt(step: StepRecord): boolean {
  const last = step.failedAttempts.at(-1);
  return last !== undefined && last.reason === PAUSED && last.delayMs === undefined && step.attempts === step.failedAttempts.length + 1;
}

/**
 * One attempt of a tool call ends once every sub-agent it started has stopped; if one of them
 * paused, so does the attempt, whatever the tool made of it (a tool that caught the pause and
 * answered something else must not end the call without the sub-agent's work).
 */
async function afterSubAgents<T>(result: Promise<T>, subAgents: readonly Promise<string>[]): Promise<T> {
  const settled = await Promise.allSettled([result]);
  let pause: RunPausedError | undefined;
  // A sub-agent may start another while the first ones settle: wait until none is new.
  for (let seen = 0; seen < subAgents.length; ) {
    const batch = subAgents.slice(seen);
    seen = subAgents.length;
    for (const outcome of await Promise.allSettled(batch)) {
      if (outcome.status === 'rejected' && outcome.reason instanceof RunPausedError) pause ??= outcome.reason;
    }
  }
  if (pause) throw pause;
  const [own] = settled;
  if (own?.status === 'rejected') throw own.reason;
  return (own as PromiseFulfilledResult<T>).value;
}

function optionalKey(effectKey: string | undefined): { effectKey?: string } {
  return effectKey === undefined ? {} : { effectKey };
}

/**
 * Whether a recorded tool step's input is the call's, by their canonical JSON. The record the loop
 * writes (a plain object of exactly those two strings) against a call of two strings compares
 * directly, to the same answer without writing either out: quoting strings is one-to-one.
 */
function sameToolInput(recorded: unknown, input: { readonly toolCallId: string; readonly arguments: string }): boolean {
  if (typeof input.toolCallId === 'string' && typeof input.arguments === 'string' && isToolInputRecord(recorded)) {
    return recorded.toolCallId === input.toolCallId && recorded.arguments === input.arguments;
  }
  return canonicalJson(recorded) === canonicalJson(input);
}

function isToolInputRecord(value: unknown): value is { readonly toolCallId: string; readonly arguments: string } {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !keys.includes('toolCallId') || !keys.includes('arguments')) return false;
  const record = value as Record<string, unknown>;
  return typeof record['toolCallId'] === 'string' && typeof record['arguments'] === 'string';
}

/**
 * An error's stack without its first line when that line is only `Name: message`: the message is
 * the step's error already, and a long one would be stored twice.
 */
function stackFrames(error: Error): string {
  const stack = error.stack ?? '';
  const header = `${error.name}: ${error.message}`;
  if (stack === header) return '';
  return stack.startsWith(`${header}\n`) ? stack.slice(header.length + 1) : stack;
}
