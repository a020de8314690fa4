import type { AssistantMessage, FinishReason, Message, ModelResponse, Usage } from '../model/model';
import { toolMessageContent } from '../guard/record';
import type { MemoryOpRecord } from '../memory/memoryStore';
import type { ApprovalRecord, EffectRecord, RunRecord, StepRecord } from '../store/checkpointStore';

/**
 * A run as its journal recorded it, read back into typed model turns and tool calls. The journal
 * stores inputs and outputs as JSON of the shapes the loop wrote; this is the one place that reads
 * them, defensively, so traces, detectors and the audit log agree on what happened.
 */

/** Everything the run database holds about one run. */
export interface TraceSource {
  readonly run: RunRecord;
  readonly steps: readonly StepRecord[];
  readonly approvals: readonly ApprovalRecord[];
  readonly effects: readonly EffectRecord[];
  /** What the run read from and wrote to memory, when the source has it. */
  readonly memoryOps?: readonly MemoryOpRecord[];
  /** The sub-agent runs its steps started, each with its own, when the source was read as a tree. */
  readonly subAgents?: readonly TraceSource[];
}

export interface ModelTurn {
  readonly kind: 'model';
  readonly step: StepRecord;
  /** `provider` and `model` of the step's label `provider:model`. */
  readonly provider: string;
  readonly model: string;
  /** The tools offered to the model at this step. */
  readonly offered: readonly string[];
  /** The model's answer, when the step completed. */
  readonly response: ModelResponse | null;
  /** `turn` for the agent's own turns; `thread_summary` for a call that summarized the thread's older turns. */
  readonly purpose: 'turn' | 'thread_summary';
}

export interface ToolCallStep {
  readonly kind: 'tool';
  readonly step: StepRecord;
  readonly name: string;
  readonly toolCallId: string | null;
  /** The arguments exactly as the model wrote them. */
  readonly arguments: string;
  /** The model step that asked for this call. */
  readonly turnSeq: number | null;
  /** What the model read back: the result, or `Error: ...`; null while the call is under way. */
  readonly content: string | null;
  /** True when completed, false when failed, null while in progress. */
  readonly ok: boolean | null;
}

export type JournalEntry = ModelTurn | ToolCallStep;

export interface JournalView {
  readonly entries: readonly JournalEntry[];
  /** The agent's own model turns (a thread summary is an entry, not a turn). */
  readonly turns: readonly ModelTurn[];
  readonly calls: readonly ToolCallStep[];
  /** The model turn that ended the run with its answer, if it did. */
  readonly finalTurn: ModelTurn | null;
}

export function readJournal(source: TraceSource): JournalView {
  const entries: JournalEntry[] = [];
  let lastTurn: number | null = null;
  for (const step of [...source.steps].sort((a, b) => a.seq - b.seq)) {
    if (step.kind === 'model') {
      entries.push(modelTurn(step));
      lastTurn = step.seq;
    } else {
      entries.push(toolCall(step, lastTurn));
    }
  }
  const turns = entries.filter((entry): entry is ModelTurn => entry.kind === 'model' && entry.purpose === 'turn');
  const calls = entries.filter((entry): entry is ToolCallStep => entry.kind === 'tool');
  const last = turns.at(-1);
  const finalTurn =
    source.run.state === 'completed' && last?.response && last.response.message.toolCalls.length === 0 && last === entries.at(-1) ? last : null;
  return { entries, turns, calls, finalTurn };
}

/** `openai:gpt-4o-mini` → provider `openai`, model `gpt-4o-mini` (model names may hold colons). */
export function splitModelLabel(label: string): { provider: string; model: string } {
  const colon = label.indexOf(':');
  return colon < 0 ? { provider: 'unknown', model: label } : { provider: label.slice(0, colon), model: label.slice(colon + 1) };
}

function modelTurn(step: StepRecord): ModelTurn {
  const input = record(step.input);
  const tools = Array.isArray(input['tools']) ? input['tools'].filter((name): name is string => typeof name === 'string') : [];
  return {
    kind: 'model',
    step,
    ...splitModelLabel(step.name),
    offered: tools,
    response: step.status === 'completed' ? modelResponse(step.output) : null,
    purpose: input['purpose'] === 'thread_summary' ? 'thread_summary' : 'turn',
  };
}

function toolCall(step: StepRecord, turnSeq: number | null): ToolCallStep {
  const input = record(step.input);
  const output = record(step.output);
  const content = typeof output['content'] === 'string' ? output['content'] : null;
  return {
    kind: 'tool',
    step,
    name: step.name,
    toolCallId: typeof input['toolCallId'] === 'string' ? input['toolCallId'] : null,
    arguments: typeof input['arguments'] === 'string' ? input['arguments'] : '',
    turnSeq,
    content: step.status === 'in_progress' ? null : (content ?? (step.status === 'failed' ? `Error: ${step.error ?? 'failed'}` : '')),
    ok: step.status === 'in_progress' ? null : step.status === 'completed',
  };
}

const FINISH_REASONS: readonly FinishReason[] = ['stop', 'tool_calls', 'length', 'content_filter', 'other'];

function modelResponse(value: unknown): ModelResponse | null {
  const output = record(value);
  const message = record(output['message']);
  if (message['role'] !== 'assistant') return null;
  const toolCalls = Array.isArray(message['toolCalls'])
    ? message['toolCalls'].map(record).map((call) => ({
        id: typeof call['id'] === 'string' ? call['id'] : '',
        name: typeof call['name'] === 'string' ? call['name'] : '',
        arguments: typeof call['arguments'] === 'string' ? call['arguments'] : '',
      }))
    : [];
  const assistant: AssistantMessage = {
    role: 'assistant',
    content: typeof message['content'] === 'string' ? message['content'] : null,
    toolCalls,
  };
  const usage = record(output['usage']);
  const tokens: Usage = {
    inputTokens: typeof usage['inputTokens'] === 'number' ? usage['inputTokens'] : 0,
    outputTokens: typeof usage['outputTokens'] === 'number' ? usage['outputTokens'] : 0,
  };
  const reason = FINISH_REASONS.find((candidate) => candidate === output['finishReason']) ?? 'other';
  return { message: assistant, finishReason: reason, usage: tokens, model: typeof output['model'] === 'string' ? output['model'] : '' };
}

/**
 * The conversation each model step was sent, by step: the run's input, then every answer and tool
 * result recorded before it, at most the last `keep` messages (with how many were left out). The
 * system instructions are not in the journal. One pass, so a long run costs what it holds.
 */
export function conversations(source: TraceSource, view: JournalView, keep: number): Map<number, { messages: Message[]; omitted: number }> {
  const byStep = new Map<number, { messages: Message[]; omitted: number }>();
  const messages: Message[] = [{ role: 'user', content: source.run.input }];
  for (const entry of view.entries) {
    if (entry.kind === 'model') {
      if (entry.purpose !== 'turn') continue;
      byStep.set(entry.step.seq, { messages: messages.slice(-keep), omitted: Math.max(0, messages.length - keep) });
      if (entry.response) messages.push(entry.response.message);
    } else if (entry.content !== null) {
      // As the model read it: fenced when the journal says it was.
      const content = toolMessageContent(source.run.traceId, entry.step.seq, entry.name, entry.content, entry.step.output, entry.ok === true);
      messages.push({ role: 'tool', toolCallId: entry.toolCallId ?? '', name: entry.name, content, isError: entry.ok === false });
    }
  }
  return byStep;
}

export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
