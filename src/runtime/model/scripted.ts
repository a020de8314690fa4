import { ModelError } from '../errors';
import { fenceOf, unfence } from '../guard/fence';
import { jsonTokens } from './tokens';
import type { AssistantMessage, FinishReason, Model, ModelCallOptions, ModelRequest, ModelResponse, ToolCall, ToolMessage } from './model';

export interface ScriptedToolCall {
  readonly name: string;
  /** Arguments as a value (sent as JSON) or as raw text, to play a model that writes broken JSON. */
  readonly args?: unknown;
  readonly rawArguments?: string;
}

export type ScriptedTurn =
  | string
  | {
      readonly text?: string;
      readonly toolCalls?: readonly ScriptedToolCall[];
    };

export interface ScriptContext {
  readonly request: ModelRequest;
  /** 0 for the first model call of a run, 1 for the next, and so on. */
  readonly turn: number;
  /** The last user message: the run's input. */
  readonly input: string;
  /**
   * Tool results given to the model since its last turn, their content without Keel's fence (the
   * fenced text is in `request.messages`).
   */
  readonly toolResults: readonly ToolMessage[];
}

export type Script = readonly ScriptedTurn[] | ((context: ScriptContext) => ScriptedTurn);

export interface ScriptedModelOptions {
  readonly name?: string;
}

/**
 * A deterministic, offline model for demos and tests. Its turn is derived from the conversation
 * (the number of assistant messages so far), never from hidden state, so the same conversation
 * always gets the same answer: in a second run, after a resume, or in a replay.
 */
export function scriptedModel(script: Script, options: ScriptedModelOptions = {}): Model {
  const name = options.name ?? 'scripted';
  return {
    provider: 'keel.scripted',
    name,
    // async, so that an abort or an exhausted script rejects the promise instead of throwing at the caller.
    async generate(request: ModelRequest, callOptions: ModelCallOptions = {}): Promise<ModelResponse> {
      callOptions.signal?.throwIfAborted();
      const context = scriptContext(request);
      const turn = pickTurn(script, context, name);
      const { message, finishReason, outputTokens } = withinLimit(toAssistantMessage(turn, context.turn), request.maxTokens);
      if (message.content) callOptions.onTextDelta?.(message.content);
      return { message, finishReason, usage: { inputTokens: requestTokens(request), outputTokens }, model: name };
    },
    countInputTokens: requestTokens,
  };
}

/**
 * The answer as a provider gives it under an output limit: whole when it fits, else its first
 * `maxTokens` tokens of text (tool calls cut short are dropped) and the finish reason `length`.
 */
function withinLimit(message: AssistantMessage, maxTokens: number | undefined): { message: AssistantMessage; finishReason: FinishReason; outputTokens: number } {
  const outputTokens = estimateTokens(JSON.stringify(message));
  if (maxTokens === undefined || outputTokens <= maxTokens) {
    return { message, finishReason: message.toolCalls.length > 0 ? 'tool_calls' : 'stop', outputTokens };
  }
  const text = message.content ?? JSON.stringify(message.toolCalls);
  return { message: { role: 'assistant', content: text.slice(0, maxTokens * CHARS_PER_TOKEN), toolCalls: [] }, finishReason: 'length', outputTokens: maxTokens };
}

function scriptContext(request: ModelRequest): ScriptContext {
  const { messages } = request;
  let turn = 0;
  let input = '';
  let lastAssistant = -1;
  messages.forEach((message, index) => {
    if (message.role === 'assistant') {
      turn += 1;
      lastAssistant = index;
    } else if (message.role === 'user') {
      input = message.content;
    }
  });
  // A script reads results as a model understands them: what a fence holds, without the fence.
  const toolResults = messages
    .slice(lastAssistant + 1)
    .filter((m): m is ToolMessage => m.role === 'tool')
    .map((m) => (fenceOf(m.content) ? { ...m, content: unfence(m.content) } : m));
  return { request, turn, input, toolResults };
}

function pickTurn(script: Script, context: ScriptContext, name: string): ScriptedTurn {
  if (typeof script === 'function') return script(context);
  const turn = script[context.turn];
  if (turn === undefined) {
    throw new ModelError(
      `The scripted model "${name}" has no answer for turn ${context.turn + 1}: its script has ${script.length} turn(s).`,
    );
  }
  return turn;
}

function toAssistantMessage(turn: ScriptedTurn, turnIndex: number): AssistantMessage {
  if (typeof turn === 'string') return { role: 'assistant', content: turn, toolCalls: [] };
  const toolCalls: ToolCall[] = (turn.toolCalls ?? []).map((call, index) => ({
    id: `call_${turnIndex + 1}_${index + 1}`,
    name: call.name,
    arguments: call.rawArguments ?? JSON.stringify(call.args ?? {}),
  }));
  return { role: 'assistant', content: turn.text ?? null, toolCalls };
}

const CHARS_PER_TOKEN = 4;

/** Token estimates per message, kept so a long conversation is not measured again at every turn. */
const messageTokens = new WeakMap<object, number>();

/** The scripted model's own count of a request's tokens, which it reports and which its calls reserve. */
function requestTokens(request: ModelRequest): number {
  return jsonTokens(request, estimateTokens, messageTokens);
}

/** A stable stand-in for a tokenizer: about four characters per token, as OpenAI suggests for English. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}
