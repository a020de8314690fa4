import OpenAI from 'openai';
import type {
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
  readonly maxTokens?: number;
  /** Per request; default 120 s. A call that times out is retried by Keel. */
  readonly timeoutMs?: number;
  /**
   * Retries done by the SDK itself. Default 0: Keel retries model calls itself, with backoff,
   * Retry-After and a record of every attempt in the run's journal.
   */
  readonly maxRetries?: number;
}

/** A model served over the Chat Completions API through the official `openai` SDK. */
export function openaiModel(options: OpenAIModelOptions): Model {
  let client: OpenAI | undefined;
  const label = `openai:${options.model}`;

  function getClient(): OpenAI {
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
    client = new OpenAI({
      apiKey,
      baseURL,
      maxRetries: options.maxRetries ?? 0,
      timeout: options.timeoutMs ?? 120_000,
    });
    return client;
  }

  return {
    provider: 'openai',
    name: options.model,
    async generate(request: ModelRequest, callOptions: ModelCallOptions = {}): Promise<ModelResponse> {
      const openai = getClient();
      const body: ChatCompletionCreateParamsBase = {
        model: options.model,
        messages: request.messages.map(toWireMessage),
        ...(request.tools.length > 0 ? { tools: request.tools.map(toWireTool) } : {}),
        ...optional('temperature', request.temperature ?? options.temperature),
        ...optional('max_completion_tokens', request.maxTokens ?? options.maxTokens),
      };
      try {
        if (options.stream === false) {
          const completion = await openai.chat.completions.create(
            { ...body, stream: false },
            { signal: callOptions.signal },
          );
          const choice = completion.choices[0];
          if (!choice) throw new ModelError(`${label} answered with no choices.`);
          const toolCalls: ToolCall[] = (choice.message.tool_calls ?? []).flatMap((call) =>
            call.type === 'function' ? [{ id: call.id, name: call.function.name, arguments: call.function.arguments }] : [],
          );
          if (choice.message.content) callOptions.onTextDelta?.(choice.message.content);
          return {
            message: { role: 'assistant', content: choice.message.content ?? null, toolCalls },
            finishReason: toFinishReason(choice.finish_reason),
            usage: toUsage(completion.usage),
            model: completion.model,
          };
        }
        const stream = await openai.chat.completions.create(
          { ...body, stream: true, stream_options: { include_usage: true } },
          { signal: callOptions.signal },
        );
        return await collectStream(stream, callOptions, options.model);
      } catch (error) {
        if (callOptions.signal?.aborted || error instanceof ModelError) throw error;
        throw new ModelError(`${label} failed: ${describeError(error)}`, { cause: error, context: errorContext(error) });
      }
    },
  };
}

async function collectStream(
  stream: AsyncIterable<ChatCompletionChunk>,
  callOptions: ModelCallOptions,
  requested: string,
): Promise<ModelResponse> {
  let content = '';
  let sawContent = false;
  let finishReason: FinishReason = 'other';
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let model = requested;
  const calls: { id: string; name: string; arguments: string }[] = [];
  for await (const chunk of stream) {
    model = chunk.model || model;
    if (chunk.usage) usage = toUsage(chunk.usage);
    for (const choice of chunk.choices) {
      const delta = choice.delta;
      if (delta.content) {
        sawContent = true;
        content += delta.content;
        callOptions.onTextDelta?.(delta.content);
      }
      for (const part of delta.tool_calls ?? []) {
        const call = (calls[part.index] ??= { id: '', name: '', arguments: '' });
        if (part.id) call.id = part.id;
        // Assigned, not appended: some compatible servers repeat the whole name in every chunk.
        if (part.function?.name) call.name = part.function.name;
        if (part.function?.arguments) call.arguments += part.function.arguments;
      }
      if (choice.finish_reason) finishReason = toFinishReason(choice.finish_reason);
    }
  }
  // The SDK ends the stream quietly when aborted; without this a cut-off answer would pass as complete.
  callOptions.signal?.throwIfAborted();
  const message: AssistantMessage = {
    role: 'assistant',
    content: sawContent ? content : null,
    toolCalls: calls.filter((call) => call !== undefined),
  };
  return { message, finishReason, usage, model };
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
function errorContext(error: unknown): Record<string, unknown> {
  if (error instanceof OpenAI.APIConnectionError) return { transient: true };
  if (!(error instanceof OpenAI.APIError)) return {};
  const retryAfter = error.headers?.get('retry-after-ms') ?? null;
  return {
    ...optional('status', error.status),
    ...optional('retryAfterMs', retryAfter !== null && Number.isFinite(Number(retryAfter)) ? Number(retryAfter) : parseRetryAfter(error.headers?.get('retry-after') ?? null)),
  };
}
