import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsBase,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { ModelError, describeError } from '../errors';
import type {
  AssistantMessage,
  FinishReason,
  Message,
  Model,
  ModelCallOptions,
  ModelRequest,
  ModelResponse,
  ToolCall,
  Usage,
} from './model';
import { parseRetryAfter } from '../effects/retry';
import { optional } from '../objects';
import { truncate } from '../format';

export interface OpenAIModelOptions {
  /** The model id, as the endpoint knows it (`gpt-4o-mini`, `llama3.1`, a deployment name...). */
  readonly model: string;
  /** Any OpenAI-compatible endpoint; defaults to `OPENAI_BASE_URL`, then OpenAI itself. */
  readonly baseURL?: string;
  /** Defaults to `OPENAI_API_KEY`. Local endpoints (Ollama, vLLM, LM Studio) need none. */
  readonly apiKey?: string;
  /** Stream the answer (text shows up as it is written). Default true. */
  readonly stream?: boolean;
  readonly temperature?: number;
  /** The most output tokens of an answer, when the agent's call does not say (a Keel agent's always does). */
  readonly maxTokens?: number;
  /**
   * The request field that carries the output limit: `max_completion_tokens` (the default, what
   * OpenAI's API takes) or `max_tokens`, for an endpoint that knows only that one. An endpoint that
   * ignores the limit shows up as a `provider_overrun` event of the runs it serves.
   */
  readonly maxTokensField?: 'max_completion_tokens' | 'max_tokens';
  /**
   * How many input tokens the endpoint will count for a request, for budget reservations, when its
   * model's tokenizer is not OpenAI's (see `countInputTokens` of Model; Keel's own estimate otherwise).
   */
  readonly countInputTokens?: (request: ModelRequest) => number | Promise<number>;
  /** Per request, until the answer starts; default 120 s. A call that times out is retried by Keel. */
  readonly timeoutMs?: number;
  /** Once an answer streams, the longest silence before Keel gives up on it (and retries); default 60 s. */
  readonly idleTimeoutMs?: number;
  /**
   * Retries done by the SDK itself. Default 0: Keel retries model calls itself, with backoff,
   * Retry-After and a record of every attempt in the run's journal.
   */
  readonly maxRetries?: number;
}

/** The `openai` SDK, loaded by the first model call: a command that calls no model does not evaluate it. */
const loadSdk = () => import('openai');
type OpenAISdk = Awaited<ReturnType<typeof loadSdk>>;
type OpenAI = InstanceType<OpenAISdk['default']>;

/** A model served over the Chat Completions API through the official `openai` SDK. */
export function openaiModel(options: OpenAIModelOptions): Model {
  let client: OpenAI | undefined;
  const label = `openai:${options.model}`;

  function getClient(sdk: OpenAISdk): OpenAI {
    if (client) return client;
    const baseURL = options.baseURL ?? process.env['OPENAI_BASE_URL'] ?? undefined;
    let apiKey = options.apiKey ?? process.env['OPENAI_API_KEY'];
    if (!apiKey) {
      if (!baseURL) {
        throw new ModelError(
          `${label} needs an API key: set OPENAI_API_KEY, or set OPENAI_BASE_URL to a local endpoint (Ollama, vLLM, LM Studio) that needs none.`,
        );
      }
      apiKey = 'unused';
    }
    client = new sdk.default({
      apiKey,
      baseURL,
      maxRetries: options.maxRetries ?? 0,
      timeout: options.timeoutMs ?? 120_000,
      // Every failure reaches Keel as an error and is recorded with the step; the SDK's own log would only repeat it.
      logLevel: 'off',
    });
    return client;
  }

  return {
    provider: 'openai',
    name: options.model,
    ...(options.countInputTokens ? { countInputTokens: options.countInputTokens } : {}),
    async generate(request: ModelRequest, callOptions: ModelCallOptions = {}): Promise<ModelResponse> {
      const sdk = await loadSdk();
      const openai = getClient(sdk);
      const body: ChatCompletionCreateParamsBase = {
        model: options.model,
        messages: request.messages.map(toWireMessage),
        ...(request.tools.length > 0 ? { tools: request.tools.map(toWireTool) } : {}),
        ...optional('temperature', request.temperature ?? options.temperature),
        ...optional(options.maxTokensField ?? 'max_completion_tokens', request.maxTokens ?? options.maxTokens),
      };
      // The SDK's own timeout stops once an answer starts streaming; a stalled stream is caught here.
      const controller = new AbortController();
      const stopOnAbort = () => controller.abort(callOptions.signal?.reason);
      callOptions.signal?.addEventListener('abort', stopOnAbort, { once: true });
      try {
        if (options.stream === false) {
          const response = await openai.chat.completions.create({ ...body, stream: false }, { signal: controller.signal }).asResponse();
          return fromCompletion(await readCompletion(response, label), callOptions);
        }
        const { data: stream, response } = await openai.chat.completions
          .create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal: controller.signal })
          .withResponse();
        // The SDK reads any body as events and finds none in a web page or a plain-text error.
        if (!contentType(response).includes('text/event-stream')) throw notACompletion(label, response, await response.text());
        return await collectStream(stream, response, callOptions, options.model, label, controller, options.idleTimeoutMs ?? 60_000);
      } catch (error) {
        if (callOptions.signal?.aborted || error instanceof ModelError) throw error;
        throw new ModelError(`${label} failed: ${describeError(error)}`, { cause: error, context: errorContext(error, sdk.default) });
      } finally {
        callOptions.signal?.removeEventListener('abort', stopOnAbort);
      }
    },
  };
}

/**
 * The body of a non-streamed answer, parsed. JSON cut off in the middle is a transient failure (the
 * SDK's SyntaxError, retried); a body that is not JSON at all (a web page, a proxy's text) is not.
 */
async function readCompletion(response: Response, label: string): Promise<{ completion: ChatCompletion; choice: ChatCompletion.Choice }> {
  const text = await response.text();
  let completion: unknown;
  try {
    completion = JSON.parse(text);
  } catch (error) {
    if (/^\s*\{/.test(text)) throw error;
    throw notACompletion(label, response, text);
  }
  const choice = isCompletion(completion) ? completion.choices[0] : undefined;
  if (!isCompletion(completion) || !choice?.message) throw notACompletion(label, response, text);
  return { completion, choice };
}

/**
 * Proxies, gateways and base URLs that point at a web UI answer 200 with something other than the
 * Chat Completions API: named with what arrived, and not retried, since asking again gets the same.
 */
function notACompletion(label: string, response: Response, body: string): ModelError {
  const type = contentType(response) || 'no content type';
  const excerpt = body.trim() === '' ? 'an empty body' : `"${truncate(body, 80)}"`;
  return new ModelError(
    `${label} answered HTTP ${response.status} with something that is not an OpenAI chat completion (${type}): ${excerpt}; check that its base URL (OPENAI_BASE_URL) points at an OpenAI-compatible API.`,
  );
}

function contentType(response: Response): string {
  return response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
}

/** A non-streamed answer, as readCompletion found it. */
function fromCompletion({ completion, choice }: { completion: ChatCompletion; choice: ChatCompletion.Choice }, callOptions: ModelCallOptions): ModelResponse {
  const toolCalls: ToolCall[] = (choice.message.tool_calls ?? []).flatMap((call) =>
    call.type === 'function' ? [{ id: call.id, name: call.function.name, arguments: call.function.arguments }] : [],
  );
  if (choice.message.content) callOptions.onTextDelta?.(choice.message.content);
  return {
    message: { role: 'assistant', content: choice.message.content ?? null, toolCalls },
    finishReason: toFinishReason(choice.finish_reason),
    usage: toUsage(completion.usage),
    model: completion.model,
    ...(completion.system_fingerprint ? { systemFingerprint: completion.system_fingerprint } : {}),
  };
}

function isCompletion(value: unknown): value is ChatCompletion {
  return typeof value === 'object' && value !== null && Array.isArray((value as { choices?: unknown }).choices);
}

async function collectStream(
  stream: AsyncIterable<ChatCompletionChunk>,
  response: Response,
  callOptions: ModelCallOptions,
  requested: string,
  label: string,
  controller: AbortController,
  idleTimeoutMs: number,
): Promise<ModelResponse> {
  let content = '';
  let sawContent = false;
  let finishReason: FinishReason | undefined;
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let model = requested;
  let fingerprint: string | undefined;
  const calls: { id: string; name: string; arguments: string }[] = [];
  let idle = false;
  let timer: NodeJS.Timeout | undefined;
  const armIdleTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      controller.abort();
    }, idleTimeoutMs);
  };
  armIdleTimer();
  try {
    for await (const chunk of stream) {
      armIdleTimer();
      if (!Array.isArray((chunk as { choices?: unknown }).choices)) throw notACompletion(label, response, JSON.stringify(chunk));
      model = chunk.model || model;
      fingerprint = chunk.system_fingerprint || fingerprint;
      if (chunk.usage) usage = toUsage(chunk.usage);
      for (const choice of chunk.choices) {
        const delta = choice.delta;
        if (delta?.content) {
          sawContent = true;
          content += delta.content;
          callOptions.onTextDelta?.(delta.content);
        }
        for (const part of delta?.tool_calls ?? []) {
          const call = (calls[part.index] ??= { id: '', name: '', arguments: '' });
          if (part.id) call.id = part.id;
          // Assigned, not appended: some compatible servers repeat the whole name in every chunk.
          if (part.function?.name) call.name = part.function.name;
          if (part.function?.arguments) call.arguments += part.function.arguments;
        }
        if (choice.finish_reason) finishReason = toFinishReason(choice.finish_reason);
      }
    }
  } catch (error) {
    if (!idle) throw error;
  } finally {
    clearTimeout(timer);
  }
  // The SDK ends the stream quietly when aborted; without this a cut-off answer would pass as complete.
  callOptions.signal?.throwIfAborted();
  if (idle) {
    throw new ModelError(`${label} stopped sending its answer for ${formatSeconds(idleTimeoutMs)}.`, { context: { transient: true } });
  }
  if (finishReason === undefined) {
    throw new ModelError(`${label} ended its answer before finishing it.`, { context: { transient: true } });
  }
  const message: AssistantMessage = {
    role: 'assistant',
    content: sawContent ? content : null,
    toolCalls: calls.filter((call) => call !== undefined),
  };
  return { message, finishReason, usage, model, ...(fingerprint ? { systemFingerprint: fingerprint } : {}) };
}

function toWireMessage(message: Message): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        ...(message.toolCalls.length > 0
          ? {
              tool_calls: message.toolCalls.map((call) => ({
                id: call.id,
                type: 'function' as const,
                function: { name: call.name, arguments: call.arguments },
              })),
            }
          : {}),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

function toWireTool(tool: ModelRequest['tools'][number]): ChatCompletionTool {
  return {
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: { ...tool.parameters } },
  };
}

function toFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'stop':
    case 'tool_calls':
    case 'length':
    case 'content_filter':
      return reason;
    case 'function_call':
      return 'tool_calls';
    default:
      return 'other';
  }
}

function toUsage(usage: { prompt_tokens: number; completion_tokens: number } | null | undefined): Usage {
  return { inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0 };
}

/** What Keel's retry classification needs to know about an SDK error. */
function errorContext(error: unknown, OpenAI: OpenAISdk['default']): Record<string, unknown> {
  // A dropped connection (before or during the answer) and a garbled body are worth another try.
  if (error instanceof OpenAI.APIConnectionError || error instanceof SyntaxError) return { transient: true };
  if (error instanceof TypeError && error.message === 'terminated') return { transient: true };
  if (!(error instanceof OpenAI.APIError)) return {};
  const retryAfter = error.headers?.get('retry-after-ms') ?? null;
  return {
    ...optional('status', error.status),
    ...optional('retryAfterMs', retryAfter !== null && Number.isFinite(Number(retryAfter)) ? Number(retryAfter) : parseRetryAfter(error.headers?.get('retry-after') ?? null)),
  };
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}
