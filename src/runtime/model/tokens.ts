import type { Message, Model, ModelRequest } from './model';

/**
 * How many input tokens a request will cost, counted before it is sent, so that a budget can hold
 * what a model call needs and no more. A model says it with `countInputTokens`; otherwise:
 * - `openai` models are counted with OpenAI's tokenizer (o200k_base, from gpt-tokenizer) the way
 *   OpenAI counts a chat request (each message's role and content, tool calls' names, arguments
 *   and ids), with more framing per message than OpenAI's 3 tokens and the tool list as JSON, which
 *   is longer than the form the model is shown: a few percent above what OpenAI reports. Models of
 *   other families served over the same API (Llama, Mistral, Qwen...) tokenize differently: their
 *   count is that one times 1.3, and never more than the request's bytes.
 * - any other model: the request's size in bytes, a bound no tokenizer exceeds (every token covers
 *   at least one byte).
 * What a call really used is what its provider reports; a report above what was reserved is a
 * `provider_overrun`.
 */
export function countInputTokens(model: Model, request: ModelRequest): Promise<number> {
  if (model.countInputTokens) return Promise.resolve(model.countInputTokens(request));
  if (model.provider === 'openai') return openaiInputTokens(model.name, request);
  return Promise.resolve(maxInputTokens(request));
}

/** Models whose tokenizer is o200k_base: counted exactly (but for the JSON around each message). */
const O200K_MODELS = /^(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|gpt-oss|codex|o\d)/;
/** How many more tokens other families' tokenizers make of the same text, at most, as Keel assumes. */
const OTHER_TOKENIZERS = 1.3;
/** Tokens OpenAI adds to prime the answer. */
const REPLY_PRIMING = 3;
/** Tokens counted around each message beyond its text (OpenAI's rule says 3 and the role). */
const PER_MESSAGE = 8;
/** Tokens counted around each tool call beyond its name, arguments and id. */
const PER_TOOL_CALL = 10;
/** Past this many characters a message is counted by its bytes: tokenizing it would hold up the process. */
const LONGEST_TOKENIZED = 200_000;

/** The input tokens of a request to an OpenAI-compatible endpoint serving `name`. */
export async function openaiInputTokens(name: string, request: ModelRequest): Promise<number> {
  const count = await o200k();
  let tokens = REPLY_PRIMING + (request.tools.length > 0 ? count(JSON.stringify(request.tools)) : 0);
  for (const message of request.messages) tokens += cached(message, o200kCache, () => chatMessageTokens(message, count));
  return O200K_MODELS.test(name) ? tokens : Math.min(Math.ceil(tokens * OTHER_TOKENIZERS), maxInputTokens(request));
}

type Counter = (text: string) => number;

let loading: Promise<Counter> | undefined;

/** OpenAI's o200k_base tokenizer, loaded on first use (its table takes a moment to build). */
function o200k(): Promise<Counter> {
  loading ??= import('gpt-tokenizer/encoding/o200k_base').then(({ countTokens }) => {
    // Text that looks like a special token is only text in a chat request.
    const options = { disallowedSpecial: new Set<string>() };
    return (text: string) => (text.length > LONGEST_TOKENIZED ? Buffer.byteLength(text) : countTokens(text, options));
  });
  return loading;
}

const o200kCache = new WeakMap<object, number>();

function chatMessageTokens(message: Message, count: Counter): number {
  switch (message.role) {
    case 'system':
    case 'user':
      return PER_MESSAGE + count(message.content);
    case 'assistant':
      return PER_MESSAGE + count(message.content ?? '') + message.toolCalls.reduce((sum, call) => sum + PER_TOOL_CALL + count(call.name) + count(call.arguments) + count(call.id), 0);
    case 'tool':
      return PER_MESSAGE + count(message.content) + count(message.toolCallId);
  }
}

/**
 * A request's tokens as `count` counts them: the tool list and each message as JSON. Messages are
 * counted once each (a conversation is sent again at every turn): `cache` keeps their counts.
 */
export function jsonTokens(request: ModelRequest, count: Counter, cache: WeakMap<object, number>): number {
  let total = count(JSON.stringify(request.tools));
  for (const message of request.messages) total += cached(message, cache, () => count(JSON.stringify(message)));
  return total;
}

function cached(key: object, cache: WeakMap<object, number>, measure: () => number): number {
  let value = cache.get(key);
  if (value === undefined) {
    value = measure();
    cache.set(key, value);
  }
  return value;
}

const byteCache = new WeakMap<object, number>();

/**
 * The most input tokens a request can cost, whatever the model's tokenizer: its bytes (plus a few
 * tokens of framing per message), since every token covers at least one byte.
 */
export function maxInputTokens(request: ModelRequest): number {
  let total = 16 + Buffer.byteLength(JSON.stringify(request.tools));
  for (const message of request.messages) total += cached(message, byteCache, () => Buffer.byteLength(JSON.stringify(message))) + 8;
  return total;
}
