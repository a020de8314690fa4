import { createHash } from 'node:crypto';
import type { FailedAttempt } from '../effects/retry';
import type { AssistantMessage, Message } from '../model/model';
import { TERMINAL_STATES, type ApprovalRecord, type CheckpointStore, type RunRecord, type StepRecord } from '../store/checkpointStore';
import { KeelError } from '../errors';
import { keepsMemory } from '../memory/memoryCapable';
import type { MemoryOpRecord } from '../memory/memoryStore';
import { detectFlags, type DetectedFlag, type DetectorOptions } from './detectors';
import { guardrailSpans } from './guardrailSpans';
import {
  conversations,
  readJournal,
  record,
  splitModelLabel,
  type JournalView,
  type ModelTurn,
  type ToolCallStep,
  type TraceSource,
} from './journalView';
import { agentFacts, type AgentFacts } from './agentFacts';
import { Redactor, redactDeep } from './redact';
import type { AttributeValue, Flag, SpanEvent, SpanKind, TraceSpan } from './span';

export type { TraceSource } from './journalView';

/**
 * A run's trace, rebuilt from what its database holds: the run record, the journal (with each
 * step's failed attempts), its approvals and the effect ledger. The journal is the trace store:
 * span ids are hashes of the trace id and the step, so building the trace twice, or after a
 * resume, gives the same spans, and one trace covers the run across pauses and resumes.
 */

export interface TraceOptions extends Omit<DetectorOptions, 'quoteContent'>, AgentFacts {
  /** Record prompts, completions, tool arguments and results (`KEEL_CAPTURE_CONTENT=1`). Off by default. */
  readonly captureContent?: boolean;
  /** Applied to every string of every span. By default, the built-in patterns only. */
  readonly redactor?: Redactor;
}

/**
 * Reads what `buildTrace` needs from the store: the run and, under it, every sub-agent run its
 * steps started, so one trace covers the whole run tree.
 */
export async function loadTraceTree(store: CheckpointStore, runId: string): Promise<TraceSource> {
  const [source, children] = await Promise.all([loadTraceSource(store, runId), store.childRuns(runId)]);
  if (children.length === 0) return source;
  return { ...source, subAgents: await Promise.all(children.map((child) => loadTraceTree(store, child.id))) };
}

/** Reads what `buildTrace` needs of one run from the store (its sub-agent runs not included). */
export async function loadTraceSource(store: CheckpointStore, runId: string): Promise<TraceSource> {
  const run = await store.getRun(runId);
  if (!run) throw new KeelError(`There is no run ${runId} in ${store.location}.`);
  const [steps, approvals, effects, memoryOps] = await Promise.all([
    store.getSteps(runId),
    store.listApprovals({ runId }),
    store.getEffects(runId),
    keepsMemory(store) ? store.memory.ops(runId) : Promise.resolve([]),
  ]);
  return { run, steps, approvals, effects, memoryOps };
}

/** The span id of the run (`[]`), of a step (`[seq]`) or of a failed attempt (`[seq, attempt]`). */
export function spanIdFor(traceId: string, ...path: readonly (string | number)[]): string {
  const id = createHash('sha256')
    .update(['keel', traceId, ...path.map(String)].join('/'))
    .digest('hex')
    .slice(0, 16);
  // An all-zero span id is invalid in W3C trace context; a hash gives one once in 2^64.
  return id === '0000000000000000' ? '0000000000000001' : id;
}

/**
 * The span ids of a run's spans. A sub-agent run shares its parent's trace, so its paths are
 * prefixed with its run id; a top-level run's are not (its ids stay what they always were).
 */
export function runSpanIds(run: Pick<RunRecord, 'id' | 'traceId' | 'parentRunId'>): (...path: readonly (string | number)[]) => string {
  return run.parentRunId === null ? (...path) => spanIdFor(run.traceId, ...path) : (...path) => spanIdFor(run.traceId, 'run', run.id, ...path);
}

/** The W3C trace context of a step's span, for the services the step calls (`00-<trace id>-<span id>-01`). */
export function traceparent(run: Pick<RunRecord, 'id' | 'traceId' | 'parentRunId'>, seq: number): string {
  return `00-${run.traceId}-${runSpanIds(run)(seq)}-01`;
}

/** Keel's own attribute names, beside the `gen_ai.*` ones of the OpenTelemetry GenAI conventions. */
export const KEEL_ATTRIBUTES = {
  cost: 'keel.cost.usd',
  stepId: 'keel.step.id',
  idempotencyKey: 'keel.idempotency_key',
  effect: 'keel.effect',
  attempt: 'keel.attempt',
  flags: 'keel.flags',
  runState: 'keel.run.state',
  toolsOffered: 'keel.tools.offered',
} as const;

type Attributes = Record<string, AttributeValue>;

/**
 * The most messages a chat span records as its input: every span repeating the whole conversation
 * would make a long run's trace grow with the square of its length. The conventions allow truncation.
 */
export const MAX_INPUT_MESSAGES = 50;

/**
 * A run's spans and, nested under the tool call that started each, its sub-agent runs' spans
 * (when the source holds them, as `loadTraceTree` reads them): one trace for the run tree.
 */
export function buildTrace(source: TraceSource, options: TraceOptions = {}): TraceSpan[] {
  // A trace built from a sub-agent run is rooted at that run.
  return treeSpans(source, options, (options.redactor ?? new Redactor()).memoized(), null);
}

function treeSpans(source: TraceSource, options: TraceOptions, redact: (text: string) => string, parentSpanId: string | null): TraceSpan[] {
  const spans = runSpans(source, options, redact, parentSpanId);
  const ids = runSpanIds(source.run);
  for (const child of source.subAgents ?? []) {
    // Each sub-agent run is checked against its own agent's facts, not its parent's.
    const childOptions: TraceOptions = { ...options, requiredTools: undefined, evidence: undefined, toolEffects: undefined, ...agentFacts(child.run) };
    spans.push(...treeSpans(child, childOptions, redact, ids(child.run.parentSeq ?? 0)));
  }
  return spans;
}

function runSpans(source: TraceSource, options: TraceOptions, redact: (text: string) => string, parentSpanId: string | null): TraceSpan[] {
  const { run } = source;
  const capture = options.captureContent === true;
  const view = readJournal(source);
  const ids = runSpanIds(run);
  const rootId = ids();
  // Content is redacted before it is serialized too, so no escaping can hide a secret from the final pass.
  const context: Context = {
    source,
    view,
    rootId,
    ids,
    options,
    content: capture ? (value) => (typeof value === 'string' ? redact(value) : json(redactDeep(value, redact))) : null,
    inputs: capture ? conversations(source, view, MAX_INPUT_MESSAGES) : new Map(),
  };
  const spans: Omit<TraceSpan, 'flags'>[] = [{ ...runSpan(context), parentSpanId }];
  const stepSpanIds = new Map<number, string>();
  const memoryOps = source.memoryOps ?? [];
  const stepSeqs = new Set(view.entries.map((entry) => entry.step.seq));
  // What the run loaded before its first step (its thread, its progress notes), and any operation of a step not in the journal, sit under the run.
  for (const op of memoryOps.filter((candidate) => !stepSeqs.has(candidate.seq))) spans.push(memorySpan(context, op, rootId));

  for (const entry of view.entries) {
    const spanId = ids(entry.step.seq);
    stepSpanIds.set(entry.step.seq, spanId);
    const step = entry.kind === 'model' ? modelSpan(context, entry, spanId) : toolSpan(context, entry, spanId);
    spans.push(step, ...attemptSpans(context, entry.step, step));
    for (const op of memoryOps.filter((candidate) => candidate.seq === entry.step.seq)) spans.push(memorySpan(context, op, spanId));
    for (const approval of source.approvals.filter((candidate) => candidate.seq === entry.step.seq)) {
      spans.push(approvalSpan(context, approval));
    }
  }
  const known = new Set(view.entries.map((entry) => entry.step.seq));
  for (const approval of source.approvals.filter((candidate) => !known.has(candidate.seq))) {
    spans.push(approvalSpan(context, approval));
  }
  const guardrails = guardrailSpans(run, view, source.approvals, ids, context.content);
  spans.push(...guardrails.map((guardrail) => guardrail.span));

  const detected = detectFlags(source, { ...options, quoteContent: capture, redact });
  const flagsBySpan = new Map<string, Flag[]>();
  for (const flag of detected) {
    const spanId = (flag.seq === null ? undefined : stepSpanIds.get(flag.seq)) ?? rootId;
    flagsBySpan.set(spanId, [...(flagsBySpan.get(spanId) ?? []), toFlag(flag, spanId)]);
  }
  for (const { span, flags } of guardrails) flagsBySpan.set(span.spanId, [...(flagsBySpan.get(span.spanId) ?? []), ...flags]);

  return spans.map((span) => {
    const flags = flagsBySpan.get(span.spanId) ?? [];
    const attributes = flags.length > 0 ? { ...span.attributes, [KEEL_ATTRIBUTES.flags]: [...new Set(flags.map((flag) => flag.kind))] } : span.attributes;
    return redactSpan({ ...span, attributes, flags }, redact);
  });
}

/** Every flag of a trace, run-wide ones first. */
export function traceFlags(spans: readonly TraceSpan[]): Flag[] {
  return spans.flatMap((span) => span.flags);
}

interface Context {
  readonly source: TraceSource;
  readonly view: JournalView;
  readonly rootId: string;
  /** The span id of a path under this run (see runSpanIds). */
  readonly ids: (...path: readonly (string | number)[]) => string;
  readonly options: TraceOptions;
  /** Captured content as an attribute value (strings as they are, anything else as JSON), redacted; null when content is not captured. */
  readonly content: ((value: unknown) => string) | null;
  /** What each model step was sent, when content is captured. */
  readonly inputs: ReadonlyMap<number, { readonly messages: readonly Message[]; readonly omitted: number }>;
}

function toFlag(flag: DetectedFlag, spanId: string): Flag {
  return { kind: flag.kind, severity: flag.severity, message: flag.message, spanId };
}

function runSpan({ source, view, rootId, content }: Context): Omit<TraceSpan, 'flags'> {
  const { run } = source;
  const { provider, model } = splitModelLabel(run.model);
  const attributes: Attributes = {
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': run.agent,
    'gen_ai.conversation.id': run.id,
    'gen_ai.provider.name': provider,
    'gen_ai.request.model': model,
    'gen_ai.usage.input_tokens': run.usage.inputTokens,
    'gen_ai.usage.output_tokens': run.usage.outputTokens,
    [KEEL_ATTRIBUTES.cost]: costOf(run),
    [KEEL_ATTRIBUTES.runState]: run.state,
    'keel.step.count': run.stepCount,
  };
  const lastModel = view.turns.findLast((turn) => turn.response !== null)?.response;
  if (lastModel && lastModel.model !== '') attributes['gen_ai.response.model'] = lastModel.model;
  const failure = runFailure(run);
  if (failure) attributes['error.type'] = failure;
  if (content) {
    attributes['gen_ai.input.messages'] = content(toInputMessages([{ role: 'user', content: run.input }]));
    if (run.state === 'completed') {
      attributes['gen_ai.output.messages'] = content([{ role: 'assistant', parts: [{ type: 'text', content: run.result ?? '' }], finish_reason: 'stop' }]);
    }
  }
  const ended = TERMINAL_STATES.includes(run.state);
  return {
    traceId: run.traceId,
    spanId: rootId,
    parentSpanId: null,
    name: `invoke_agent ${run.agent}`,
    kind: 'agent',
    startTime: run.createdAt,
    // A running run and one waiting for a decision are still open; an interrupted one stopped when its record last changed.
    endTime: ended ? (run.endedAt ?? run.updatedAt) : run.state === 'interrupted' ? run.updatedAt : null,
    status: run.state === 'completed' ? 'ok' : failure ? 'error' : 'unset',
    statusMessage: run.state === 'completed' ? null : run.error,
    attributes,
    events: [],
  };
}

/** The `error.type` of a run that ended other than completed: `run_failed`, `cancelled`, ... */
function runFailure(run: RunRecord): string | null {
  if (run.state === 'completed' || !TERMINAL_STATES.includes(run.state)) return null;
  return run.state === 'failed' ? 'run_failed' : run.state;
}

/** What a run or a model step cost in USD, when the store knows; 0 when it does not. */
function costOf(value: RunRecord | StepRecord): number {
  const cost = record(value)['costUsd'];
  return typeof cost === 'number' && Number.isFinite(cost) ? cost : 0;
}

function modelSpan({ source, rootId, content, inputs }: Context, turn: ModelTurn, spanId: string): Omit<TraceSpan, 'flags'> {
  const { step, response } = turn;
  const attributes: Attributes = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': turn.provider,
    'gen_ai.request.model': turn.model,
    'gen_ai.conversation.id': step.runId,
    'gen_ai.agent.name': source.run.agent,
    [KEEL_ATTRIBUTES.stepId]: step.seq,
    [KEEL_ATTRIBUTES.attempt]: step.attempts,
    [KEEL_ATTRIBUTES.toolsOffered]: [...turn.offered],
  };
  if (response) {
    if (response.model !== '') attributes['gen_ai.response.model'] = response.model;
    attributes['gen_ai.response.finish_reasons'] = [response.finishReason];
    attributes['gen_ai.usage.input_tokens'] = response.usage.inputTokens;
    attributes['gen_ai.usage.output_tokens'] = response.usage.outputTokens;
    attributes[KEEL_ATTRIBUTES.cost] = costOf(step);
  }
  if (turn.purpose !== 'turn') attributes['keel.model.purpose'] = turn.purpose;
  if (step.status === 'failed') attributes['error.type'] = errorType(step);
  if (content) {
    const input = inputs.get(step.seq);
    attributes['gen_ai.input.messages'] = content(toInputMessages(input?.messages ?? []));
    if (input && input.omitted > 0) attributes['keel.input.messages.omitted'] = input.omitted;
    attributes['gen_ai.tool.definitions'] = content(turn.offered.map((name) => ({ type: 'function', name })));
    if (response) attributes['gen_ai.output.messages'] = content([{ ...toMessage(response.message), finish_reason: response.finishReason }]);
  }
  return stepSpan(source.run, step, spanId, rootId, `chat ${turn.model}`, 'model', attributes);
}

function toolSpan({ source, rootId, options, content }: Context, call: ToolCallStep, spanId: string): Omit<TraceSpan, 'flags'> {
  const { step } = call;
  const effect = source.effects.find((entry) => entry.key === step.idempotencyKey)?.effect ?? options.toolEffects?.[call.name];
  const attributes: Attributes = {
    // What the tool added to its span (an MCP tool: the MCP conventions' attributes); Keel's own come after and win.
    ...annotatedAttributes(step),
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': call.name,
    'gen_ai.tool.type': 'function',
    'gen_ai.conversation.id': step.runId,
    [KEEL_ATTRIBUTES.stepId]: step.seq,
    [KEEL_ATTRIBUTES.attempt]: step.attempts,
  };
  if (call.toolCallId) attributes['gen_ai.tool.call.id'] = call.toolCallId;
  if (step.idempotencyKey) attributes[KEEL_ATTRIBUTES.idempotencyKey] = step.idempotencyKey;
  if (effect) attributes[KEEL_ATTRIBUTES.effect] = effect;
  if (step.status === 'failed' && typeof attributes['error.type'] !== 'string') attributes['error.type'] = errorType(step);
  if (content) {
    attributes['gen_ai.tool.call.arguments'] = content(parseArguments(call.arguments));
    if (call.ok === true && call.content !== null) attributes['gen_ai.tool.call.result'] = content(parseArguments(call.content));
  }
  return stepSpan(source.run, step, spanId, rootId, `execute_tool ${call.name}`, 'tool', attributes);
}

/** The attributes a tool added to its step's span with `ctx.annotate`, as its output records them. */
function annotatedAttributes(step: StepRecord): Attributes {
  const recorded = record(record(step.output)['attributes']);
  const attributes: Attributes = {};
  for (const [key, value] of Object.entries(recorded)) {
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) attributes[key] = value;
  }
  return attributes;
}

/**
 * A memory read or write as a span under the step that made it: `keel.memory.get user:ada/diet`,
 * `keel.memory.search project`, `keel.memory.thread.load <thread>`. Values, queries and requests
 * are content: recorded only when content is captured.
 */
function memorySpan({ source, ids, content }: Context, op: MemoryOpRecord, parentSpanId: string): Omit<TraceSpan, 'flags'> {
  const { run } = source;
  const result = op.result;
  const attributes: Attributes = {
    'keel.memory.operation': op.op,
    [KEEL_ATTRIBUTES.stepId]: op.seq,
    'keel.memory.op_index': op.opIndex,
  };
  if (op.namespace !== null) attributes['keel.memory.namespace'] = op.namespace;
  if (op.key !== null) attributes['keel.memory.key'] = op.key;
  const item = record(result);
  if (typeof item['channel'] === 'string') attributes['keel.memory.channel'] = item['channel'];
  if (typeof item['revision'] === 'number') attributes['keel.memory.revision'] = item['revision'];
  switch (op.op) {
    case 'get':
    case 'progress.get':
      attributes['keel.memory.found'] = result !== null;
      break;
    case 'search':
    case 'list':
      attributes['keel.memory.results'] = Array.isArray(result) ? result.length : 0;
      if (op.op === 'search' && typeof record(op.request)['mode'] === 'string') attributes['keel.memory.search.mode'] = String(record(op.request)['mode']);
      break;
    case 'delete':
      attributes['keel.memory.deleted'] = item['deleted'] === true;
      break;
    case 'thread.load': {
      const threadId = record(op.request)['threadId'];
      if (typeof threadId === 'string') attributes['keel.thread.id'] = threadId;
      attributes['keel.thread.runs'] = Array.isArray(item['runs']) ? item['runs'].length : 0;
      attributes['keel.thread.summary'] = item['summary'] !== null && item['summary'] !== undefined;
      break;
    }
    case 'put':
    case 'progress.update':
      break;
  }
  if (content) {
    attributes['keel.memory.request'] = content(op.request);
    attributes['keel.memory.result'] = content(result);
  }
  const target = op.op === 'thread.load' ? String(attributes['keel.thread.id'] ?? '') : [op.namespace, op.key].filter((part) => part !== null).join('/');
  return {
    traceId: run.traceId,
    spanId: ids(op.seq, 'memory', op.opIndex),
    parentSpanId,
    name: `keel.memory.${op.op}${target === '' ? '' : ` ${target}`}`,
    kind: 'memory',
    startTime: op.startedAt,
    endTime: op.endedAt,
    status: 'ok',
    statusMessage: null,
    attributes,
    events: [],
  };
}

function stepSpan(
  run: RunRecord,
  step: StepRecord,
  spanId: string,
  parentSpanId: string,
  name: string,
  kind: SpanKind,
  attributes: Attributes,
): Omit<TraceSpan, 'flags'> {
  return {
    traceId: run.traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    // A restarted step's record starts at its restart; its span starts with its first attempt.
    startTime: Math.min(step.startedAt, ...attemptStarts(step)),
    endTime: step.endedAt,
    status: step.status === 'completed' ? 'ok' : step.status === 'failed' ? 'error' : 'unset',
    statusMessage: step.status === 'failed' ? step.error : null,
    attributes,
    events: exceptionEvents(step),
  };
}

/** A tool's thrown error as OpenTelemetry's `exception` event: its class, message and stack, as the journal kept them. */
function exceptionEvents(step: StepRecord): SpanEvent[] {
  const exception = step.status === 'failed' ? record(record(step.output)['exception']) : {};
  const { type, stacktrace } = exception;
  if (typeof type !== 'string' || typeof stacktrace !== 'string') return [];
  const attributes = { 'exception.type': type, 'exception.message': step.error ?? '', 'exception.stacktrace': stacktrace };
  return [{ name: 'exception', time: step.endedAt ?? step.startedAt, attributes }];
}

/** When each failed attempt of a step started: the first with the step, each next one after the wait that followed the last. */
function attemptStarts(step: StepRecord): number[] {
  const starts: number[] = [];
  let next = step.startedAt;
  for (const failure of step.failedAttempts) {
    starts.push(Math.min(next, failure.at));
    next = failure.at + (failure.delayMs ?? 0);
  }
  return starts;
}

function attemptSpans({ source: { run }, ids }: Context, step: StepRecord, parent: Omit<TraceSpan, 'flags'>): Omit<TraceSpan, 'flags'>[] {
  const starts = attemptStarts(step);
  return step.failedAttempts.map((failure: FailedAttempt, index) => ({
    traceId: run.traceId,
    spanId: ids(step.seq, 'attempt', failure.attempt),
    parentSpanId: parent.spanId,
    name: `${parent.name} attempt ${failure.attempt}`,
    kind: 'retry',
    startTime: starts[index] ?? failure.at,
    endTime: failure.at,
    status: 'error',
    statusMessage: failure.error,
    attributes: {
      [KEEL_ATTRIBUTES.stepId]: step.seq,
      [KEEL_ATTRIBUTES.attempt]: failure.attempt,
      'error.type': failure.reason,
      'keel.retry.class': failure.class,
      ...(failure.delayMs === undefined ? { 'keel.retry.gave_up': true } : { 'keel.retry.delay_ms': failure.delayMs }),
    },
    events: [],
  }));
}

function approvalSpan({ source, rootId, ids, content }: Context, approval: ApprovalRecord): Omit<TraceSpan, 'flags'> {
  const { run } = source;
  const decision = approval.decision as { readonly action?: unknown; readonly reason?: unknown; readonly result?: unknown } | null;
  const action = typeof decision?.action === 'string' ? decision.action : null;
  const attributes: Attributes = {
    'keel.approval.id': approval.id,
    'keel.approval.kind': approval.kind,
    'keel.approval.status': approval.status,
    'gen_ai.tool.name': approval.tool,
    [KEEL_ATTRIBUTES.stepId]: approval.seq,
  };
  if (action) attributes['keel.approval.decision'] = action;
  if (approval.decidedBy) attributes['keel.approval.decided_by'] = approval.decidedBy;
  if (content) {
    attributes['keel.approval.args'] = content(approval.args);
    attributes['keel.approval.reason'] = content(approval.reason);
    if (typeof decision?.reason === 'string') attributes['keel.approval.decision_reason'] = content(decision.reason);
    if (decision && 'result' in decision) attributes['keel.approval.result'] = content(decision.result);
  }
  return {
    traceId: run.traceId,
    spanId: ids('approval', approval.id),
    parentSpanId: rootId,
    name: `keel.approval ${approval.tool}`,
    kind: 'approval',
    startTime: approval.requestedAt,
    endTime: approval.decidedAt,
    status: approval.status === 'pending' ? 'unset' : 'ok',
    statusMessage: approval.status === 'pending' ? approval.reason : null,
    attributes,
    events: [],
  };
}

/** A low-cardinality name for why a step failed, as `error.type` asks. */
function errorType(step: StepRecord): string {
  const error = step.error ?? '';
  if (error.includes('does not match its schema')) return 'tool_output_schema';
  if (error.startsWith('Invalid arguments') || error.includes('are not valid JSON')) return 'invalid_arguments';
  if (error.startsWith('There is no tool named')) return 'unknown_tool';
  if (error.includes('marked as failed by')) return 'failed_by_decision';
  return step.failedAttempts.at(-1)?.reason ?? '_OTHER';
}

/** Keel's messages in the shape of the conventions' `gen_ai.input.messages` (role and parts). */
function toInputMessages(messages: readonly Message[]): unknown[] {
  return messages.map((message) => {
    switch (message.role) {
      case 'system':
      case 'user':
        return { role: message.role, parts: [{ type: 'text', content: message.content }] };
      case 'assistant':
        return toMessage(message);
      case 'tool':
        return { role: 'tool', parts: [{ type: 'tool_call_response', id: message.toolCallId, result: message.content }] };
    }
  });
}

function toMessage(message: AssistantMessage): { role: 'assistant'; parts: unknown[] } {
  const parts: unknown[] = [];
  if (message.content) parts.push({ type: 'text', content: message.content });
  for (const call of message.toolCalls) parts.push({ type: 'tool_call', id: call.id, name: call.name, arguments: parseArguments(call.arguments) });
  return { role: 'assistant', parts };
}

/** Tool arguments as an object, as the conventions ask, or as written when they are not JSON. */
function parseArguments(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/** A copy of `span` with every string redacted: name, status, attributes, events and flags. */
export function redactSpan(span: TraceSpan, redactor: Redactor | ((text: string) => string)): TraceSpan {
  const redact = typeof redactor === 'function' ? redactor : (text: string) => redactor.redact(text);
  const redactAttributes = (attributes: Readonly<Record<string, AttributeValue>>): Record<string, AttributeValue> =>
    Object.fromEntries(
      Object.entries(attributes).map(([key, value]) => [
        key,
        typeof value === 'string' ? redact(value) : Array.isArray(value) ? value.map((item: string) => redact(item)) : value,
      ]),
    );
  return {
    ...span,
    name: redact(span.name),
    statusMessage: span.statusMessage === null ? null : redact(span.statusMessage),
    attributes: redactAttributes(span.attributes),
    events: span.events.map((event) => ({ ...event, name: redact(event.name), attributes: redactAttributes(event.attributes) })),
    flags: span.flags.map((flag) => ({ ...flag, message: redact(flag.message) })),
  };
}
