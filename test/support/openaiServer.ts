/**
 * A local, scriptable stand-in for the OpenAI Chat Completions API, for tests that want the real
 * `openai` SDK talking real HTTP. It serves `POST /v1/chat/completions` (plain JSON and SSE
 * streaming, tool calls included) and `GET /v1/models`, records every chat request it receives and
 * answers each with whatever the test's `respond` says.
 *
 * Each answer is first turned into a `Plan` (status, headers, and either one body or a list of SSE
 * events) and only then written out, so behaviour at the wire level (delays, dropped connections,
 * corrupted bodies) can later be added to the writer without touching how replies are built.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';

/** A chat completion request as the server received it. */
export interface RecordedRequest {
  /** The JSON body exactly as sent, parsed. Only checked to be an object with `model` and `messages`. */
  readonly body: ChatCompletionCreateParams;
  /** Request headers, lower-cased by Node (`authorization`, `content-type`...). */
  readonly headers: IncomingHttpHeaders;
  /** Whether the client asked for a stream (`"stream": true`). */
  readonly stream: boolean;
}

export interface ReplyToolCall {
  readonly name: string;
  /** JSON text, sent as is: it may be invalid on purpose. */
  readonly arguments: string;
  /** Defaults to `call_N`, N counting every tool call this server has produced. */
  readonly id?: string;
}

export type WireFinishReason = ChatCompletion.Choice['finish_reason'];

/** A successful answer. */
export interface CompletionReply {
  /** The text. As an array, the exact pieces to stream (joined when not streaming). */
  readonly content?: string | readonly string[];
  readonly toolCalls?: readonly ReplyToolCall[];
  /** Defaults to an estimate: about four characters a token. */
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number };
  /** The model reported back; defaults to the one requested. */
  readonly model?: string;
  /** Defaults to `tool_calls` when there are tool calls, else `stop`. */
  readonly finishReason?: WireFinishReason;
  /**
   * Rewrites the streamed chunks before they are sent, to play an OpenAI-compatible server that
   * streams differently from OpenAI. Ignored when not streaming.
   */
  readonly mapChunks?: (chunks: ChatCompletionChunk[]) => ChatCompletionChunk[];
}

/** An HTTP error with an OpenAI-shaped body: `{ error: { message, type, param, code } }`. */
export interface ErrorReply {
  readonly status: number;
  readonly error?: { readonly message?: string; readonly type?: string; readonly code?: string | null };
  /** Sent as a `retry-after` header, in seconds. */
  readonly retryAfter?: number;
}

export type ServerReply = CompletionReply | ErrorReply;

/** Chooses the reply to the `index`th chat request (0-based). May be async. */
export type Responder = (request: RecordedRequest, index: number) => ServerReply | Promise<ServerReply>;

export interface OpenAIServerOptions {
  /** A function, or a list of replies taken in order (a request past its end gets a 500). */
  readonly respond: Responder | readonly ServerReply[];
  /** Model ids listed by `GET /v1/models`. Default `['gpt-4o-mini']`. */
  readonly models?: readonly string[];
}

export interface OpenAIServer {
  /** Base URL ending in `/v1`, to pass as the SDK's `baseURL`. */
  readonly url: string;
  /** Every chat completion request received, in order. */
  readonly requests: readonly RecordedRequest[];
  /** Stops the server, cutting any connection still open. */
  close(): Promise<void>;
}

/** Fixed so that replies are byte-for-byte reproducible. */
const CREATED = 1_700_000_000;
/** Tool-call arguments are streamed in pieces of this many characters, as OpenAI splits them by token. */
const ARGUMENT_PIECE = 6;

interface WireError {
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

type Plan =
  | { readonly kind: 'body'; readonly status: number; readonly headers: Record<string, string>; readonly body: string }
  | { readonly kind: 'events'; readonly headers: Record<string, string>; readonly events: readonly string[] };

export async function startOpenAIServer(options: OpenAIServerOptions): Promise<OpenAIServer> {
  const requests: RecordedRequest[] = [];
  const respond = toResponder(options.respond);
  const models = options.models ?? ['gpt-4o-mini'];
  let completions = 0;
  let toolCallCount = 0;
  const ids = {
    completion: (): string => `chatcmpl-${++completions}`,
    toolCall: (): string => `call_${++toolCallCount}`,
  };

  async function plan(req: IncomingMessage): Promise<Plan> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      return json(200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'keel-test' })),
      });
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      return errorPlan(404, { message: `Invalid URL (${req.method ?? '?'} ${path ?? ''})` });
    }
    const body = parseChatRequest(await readBody(req));
    if (typeof body === 'string') return errorPlan(400, { message: body });
    const request: RecordedRequest = { body, headers: req.headers, stream: body.stream === true };
    const index = requests.length;
    requests.push(request);
    let reply: ServerReply;
    try {
      reply = await respond(request, index);
    } catch (error) {
      return errorPlan(500, { message: `The test server's respond function threw: ${String(error)}` });
    }
    if ('status' in reply) return errorPlan(reply.status, reply.error ?? {}, reply.retryAfter);
    const answer = buildAnswer(reply, request, ids);
    return request.stream ? streamPlan(answer, reply, includeUsage(body)) : json(200, completionBody(answer));
  }

  const server = createServer((req, res) => {
    plan(req).then(
      (p) => write(res, p),
      (error: unknown) => write(res, errorPlan(500, { message: `The test server failed: ${String(error)}` })),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function toResponder(respond: OpenAIServerOptions['respond']): Responder {
  if (typeof respond === 'function') return respond;
  const replies: readonly ServerReply[] = respond;
  return (_request, index) =>
    replies[index] ?? {
      status: 500,
      error: { message: `The test server has no reply for request ${index + 1}: it was given ${replies.length}.` },
    };
}

/** What the model said, with every default filled in: shared by the JSON and the SSE forms. */
interface Answer {
  readonly id: string;
  readonly model: string;
  readonly pieces: readonly string[];
  readonly text: string | null;
  readonly toolCalls: readonly ChatCompletionMessageFunctionToolCall[];
  readonly finishReason: WireFinishReason;
  readonly usage: CompletionUsage;
}

function buildAnswer(
  reply: CompletionReply,
  request: RecordedRequest,
  ids: { completion(): string; toolCall(): string },
): Answer {
  const { content } = reply;
  const pieces = content === undefined ? [] : typeof content === 'string' ? words(content) : [...content];
  const text = content === undefined ? null : pieces.join('');
  const toolCalls = (reply.toolCalls ?? []).map(
    (call): ChatCompletionMessageFunctionToolCall => ({
      id: call.id ?? ids.toolCall(),
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    }),
  );
  const written = (text ?? '') + toolCalls.map((call) => call.function.name + call.function.arguments).join('');
  const promptTokens = reply.usage?.prompt_tokens ?? estimateTokens(JSON.stringify(request.body.messages));
  const completionTokens = reply.usage?.completion_tokens ?? estimateTokens(written);
  return {
    id: ids.completion(),
    model: reply.model ?? request.body.model,
    pieces,
    text,
    toolCalls,
    finishReason: reply.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}

function completionBody(answer: Answer): ChatCompletion {
  return {
    id: answer.id,
    object: 'chat.completion',
    created: CREATED,
    model: answer.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: answer.text,
          refusal: null,
          annotations: [],
          ...(answer.toolCalls.length > 0 ? { tool_calls: [...answer.toolCalls] } : {}),
        },
        logprobs: null,
        finish_reason: answer.finishReason,
      },
    ],
    usage: answer.usage,
  };
}

/** The chunks OpenAI would stream: role first, then text, then each tool call in turn, then the finish. */
function streamChunks(answer: Answer, withUsage: boolean): ChatCompletionChunk[] {
  const head = { id: answer.id, object: 'chat.completion.chunk', created: CREATED, model: answer.model } as const;
  const chunk = (delta: ChatCompletionChunk.Choice.Delta, finish: WireFinishReason | null = null): ChatCompletionChunk => ({
    ...head,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  });
  const chunks = [chunk({ role: 'assistant', content: '', refusal: null })];
  for (const piece of answer.pieces) chunks.push(chunk({ content: piece }));
  answer.toolCalls.forEach((call, index) => {
    const { name, arguments: args } = call.function;
    chunks.push(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name, arguments: '' } }] }));
    for (const piece of slices(args, ARGUMENT_PIECE)) {
      chunks.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    }
  });
  chunks.push(chunk({}, answer.finishReason));
  if (withUsage) chunks.push({ ...head, choices: [], usage: answer.usage });
  return chunks;
}

function streamPlan(answer: Answer, reply: CompletionReply, withUsage: boolean): Plan {
  const chunks = streamChunks(answer, withUsage);
  const sent = reply.mapChunks ? reply.mapChunks(chunks) : chunks;
  return {
    kind: 'events',
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
    events: [...sent.map((c) => `data: ${JSON.stringify(c)}\n\n`), 'data: [DONE]\n\n'],
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Plan {
  return { kind: 'body', status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

const ERROR_TYPES: Readonly<Record<number, { type: string; code: string | null; message: string }>> = {
  400: { type: 'invalid_request_error', code: null, message: 'Bad request.' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Forbidden.' },
  404: { type: 'invalid_request_error', code: null, message: 'Not found.' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached.' },
};

function errorPlan(status: number, error: NonNullable<ErrorReply['error']>, retryAfter?: number): Plan {
  const defaults = ERROR_TYPES[status] ?? { type: 'server_error', code: null, message: 'The server had an error.' };
  const wire: WireError = {
    message: error.message ?? defaults.message,
    type: error.type ?? defaults.type,
    param: null,
    code: error.code === undefined ? defaults.code : error.code,
  };
  return json(status, { error: wire }, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) });
}

function write(res: ServerResponse, plan: Plan): void {
  if (res.destroyed) return;
  if (plan.kind === 'body') {
    res.writeHead(plan.status, plan.headers).end(plan.body);
    return;
  }
  res.writeHead(200, plan.headers);
  for (const event of plan.events) res.write(event);
  res.end();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** The request body, or why it is not one (OpenAI's wording where it has one). */
function parseChatRequest(text: string): ChatCompletionCreateParams | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return (
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library " +
      'correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)'
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'The request body must be a JSON object.';
  if (!('model' in value) || typeof value.model !== 'string') return 'you must provide a model parameter';
  if (!('messages' in value) || !Array.isArray(value.messages)) return "Missing required parameter: 'messages'.";
  return value as ChatCompletionCreateParams;
}

function includeUsage(body: ChatCompletionCreateParams): boolean {
  return body.stream === true && body.stream_options?.include_usage === true;
}

/** Words with their trailing spaces: `"Hello big world"` → `["Hello ", "big ", "world"]`. */
function words(text: string): string[] {
  return text.match(/\s*\S+\s*|\s+/g) ?? [];
}

function slices(text: string, size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; at += size) out.push(text.slice(at, at + size));
  return out;
}

function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
