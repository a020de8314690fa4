/**
 * A local, scriptable stand-in for the OpenAI Chat Completions API, for tests that want the real
 * `openai` SDK talking real HTTP. It serves `POST /v1/chat/completions` (plain JSON and SSE
 * streaming, tool calls included) and `GET /v1/models`, records every chat request it receives and
 * answers each with whatever the test's `respond` says.
 *
 * It also misbehaves on demand, as real endpoints and the proxies in front of them do: a reply can
 * be a fault (rate limit, server error, late answer, stall, dropped connection, malformed body), and
 * `faults` turns a seeded-random share of replies into faults.
 *
 * Each answer is first turned into a `Plan` (a wait, then either nothing at all or a status, headers
 * and pieces of body, then the end of the response, a dropped connection or silence) and only then
 * written out by `write`: a fault is a different plan, never a different writer.
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
import { seededRandom } from './seededRandom';

/** A chat completion request as the server received it. */
export interface RecordedRequest {
  /** The JSON body exactly as sent, parsed. Only checked to be an object with `model` and `messages`. */
  readonly body: ChatCompletionCreateParams;
  /** Request headers, lower-cased by Node (`authorization`, `content-type`...). */
  readonly headers: IncomingHttpHeaders;
  /** Whether the client asked for a stream (`"stream": true`). */
  readonly stream: boolean;
  /**
   * When the request arrived, in milliseconds on the monotonic clock of `performance.now()`: the
   * difference between two requests is the time a client waited before retrying.
   */
  readonly receivedAt: number;
  /** The fault the request was answered with, if any. Set once its reply is chosen: still unset while `respond` runs. */
  readonly fault: FaultKind | undefined;
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
  /** Sent as a `retry-after` header: a number as seconds, a `Date` in the HTTP-date form. */
  readonly retryAfter?: number | Date;
}

/** A 429 with OpenAI's rate-limit body. */
export interface RateLimitFault {
  readonly fault: 'rate-limit';
  /** The `retry-after` header: a number as seconds, a `Date` in the HTTP-date form. Default 1 (second). */
  readonly retryAfter?: number | Date;
}

/** A server error with an OpenAI-shaped body. */
export interface ServerErrorFault {
  readonly fault: 'server-error';
  /** Default 500. */
  readonly status?: 500 | 502 | 503 | 504;
}

/** A reply sent only after a silence, as an overloaded endpoint answers. */
export interface DelayFault {
  readonly fault: 'delay';
  /** How long nothing at all is sent, status line included. */
  readonly ms: number;
  /**
   * What is sent afterwards. Default: what `respond` answers, for a delay drawn by `faults`; a short
   * text answer otherwise.
   */
  readonly reply?: ServerReply;
}

/**
 * Where a stall or a drop cuts `reply` short. With `afterChunks` 0 (the default) nothing is sent,
 * not even a status line. Above 0, a streamed request gets the status, the headers and that many
 * SSE events of `reply`; a non-streamed one gets the status, the headers (with the `content-length`
 * of the whole body) and the first half of its JSON body.
 */
export interface CutShort {
  readonly afterChunks?: number;
  /** The answer whose beginning gets through. Default a short text answer. */
  readonly reply?: CompletionReply;
}

/** The connection stays open and nothing more is ever sent, until the client gives up or `close()`. */
export interface StallFault extends CutShort {
  readonly fault: 'stall';
}

/** The socket is destroyed. */
export interface DropFault extends CutShort {
  readonly fault: 'drop';
}

export type MalformedVariant =
  /** 200 with `content-type: application/json`, but a proxy's plain-text error as the body, streamed request or not. */
  | 'not-json'
  /** 200 with `content-type: text/html`: a web page (a login portal, a base URL that points at a web UI), streamed request or not. */
  | 'html'
  /**
   * The answer cut in the middle of its JSON, in a response that ends properly: a non-streamed
   * body is half a completion; a stream stops halfway through its last event (no `[DONE]`).
   */
  | 'truncated-json'
  /**
   * An event stream (even to a request that did not ask for one) with one `data:` line holding half
   * an event, then the rest of the answer and `[DONE]`.
   */
  | 'broken-sse'
  /** Well-formed JSON with no `choices`: the completion, or every streamed chunk. */
  | 'no-choices';

/** A 200 whose body is not what the API promises. */
export interface MalformedFault {
  readonly fault: 'malformed';
  readonly variant: MalformedVariant;
  /** The answer the body is made from, for the variants that carry one. Default a short text answer. */
  readonly reply?: CompletionReply;
}

/** Ways an endpoint misbehaves. Each is counted in `OpenAIServer.faultsInjected` under its `fault`. */
export type FaultReply = RateLimitFault | ServerErrorFault | DelayFault | StallFault | DropFault | MalformedFault;

export type FaultKind = FaultReply['fault'];

/** The kinds that need no setting, which `RandomFaults.kinds` may name instead of spelling out. */
export type SimpleFaultKind = Exclude<FaultKind, 'delay' | 'malformed'>;

export type ServerReply = CompletionReply | ErrorReply | FaultReply;

/**
 * Chooses the reply to a chat request; `index` counts the requests passed to it, from 0 (every chat
 * request, unless `faults` answered some without asking). May be async.
 */
export type Responder = (request: RecordedRequest, index: number) => ServerReply | Promise<ServerReply>;

/**
 * Faults in place of a seeded-random share of replies. Each chat request takes the next two numbers
 * of a generator seeded with `seed` (whether to fault, and which fault), so the same seed faults the
 * same request numbers the same way. A request drawn for a fault other than a `delay` without its
 * own reply is answered without asking `respond`: a list of replies is not used up by faults, and a
 * client's retry gets the reply the failed attempt would have had.
 */
export interface RandomFaults {
  /** The share of chat requests answered with a fault, from 0 to 1. */
  readonly rate: number;
  /** The faults drawn from, with equal chances: spelled out, or a kind named for its defaults. */
  readonly kinds: readonly (FaultReply | SimpleFaultKind)[];
  /** An integer. */
  readonly seed: number;
}

export interface OpenAIServerOptions {
  /** A function, or a list of replies taken in order (a request past its end gets a 500). */
  readonly respond: Responder | readonly ServerReply[];
  /** Model ids listed by `GET /v1/models`. Default `['gpt-4o-mini']`. */
  readonly models?: readonly string[];
  /** Random faults on chat requests. None by default. */
  readonly faults?: RandomFaults;
}

export interface OpenAIServer {
  /** Base URL ending in `/v1`, to pass as the SDK's `baseURL`. */
  readonly url: string;
  /** Every chat completion request received, in order. */
  readonly requests: readonly RecordedRequest[];
  /**
   * Faults sent so far, by kind, whether `respond` returned them or `faults` drew them. A delayed
   * fault counts as both a `delay` and its own kind.
   */
  readonly faultsInjected: Readonly<Record<FaultKind, number>>;
  /** Stops the server, cutting every connection still open, stalled ones included. Calling it again is harmless. */
  close(): Promise<void>;
}

/** Fixed so that replies are byte-for-byte reproducible. */
const CREATED = 1_700_000_000;
/** Tool-call arguments are streamed in pieces of this many characters, as OpenAI splits them by token. */
const ARGUMENT_PIECE = 6;
/** The answer faults are made from when they are given none. */
const FILLER: CompletionReply = { content: 'This answer from the test server takes a few words.' };
const DEFAULT_RETRY_AFTER_SECONDS = 1;
/** What Envoy sends when its upstream goes away, here behind a 200 that claims to be JSON. */
const PROXY_ERROR_TEXT = 'upstream connect error or disconnect/reset before headers. reset reason: connection termination';
const LOGIN_PAGE =
  '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method="post" action="/login">' +
  '<input name="password" type="password"><button>Sign in</button></form></body></html>\n';

interface WireError {
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

/**
 * What to send. `silence` sends nothing at all; `response` sends a status, headers and `pieces` in
 * order. Both wait `delayMs` first, and end as `then` says: `end` finishes the response, `drop`
 * destroys the socket once the pieces are out, `stall` keeps it open and quiet.
 */
type Plan =
  | { readonly kind: 'silence'; readonly delayMs: number; readonly then: 'drop' | 'stall' }
  | {
      readonly kind: 'response';
      readonly delayMs: number;
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly pieces: readonly string[];
      readonly then: 'end' | 'drop' | 'stall';
    };

/** How one request's replies become plans: shared by the plain answers and the faults made from them. */
interface Planner {
  readonly request: RecordedRequest;
  plan(reply: ServerReply): Plan;
  answer(reply: CompletionReply): Answer;
}

type Recorded = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

export async function startOpenAIServer(options: OpenAIServerOptions): Promise<OpenAIServer> {
  const requests: Recorded[] = [];
  const respond = toResponder(options.respond);
  const drawFault = options.faults ? faultDrawer(options.faults) : (): undefined => undefined;
  const models = options.models ?? ['gpt-4o-mini'];
  const faultsInjected: Record<FaultKind, number> = {
    'rate-limit': 0,
    'server-error': 0,
    delay: 0,
    stall: 0,
    drop: 0,
    malformed: 0,
  };
  let asked = 0;
  let completions = 0;
  let toolCallCount = 0;
  const ids = {
    completion: (): string => `chatcmpl-${++completions}`,
    toolCall: (): string => `call_${++toolCallCount}`,
  };

  async function ask(request: RecordedRequest): Promise<ServerReply> {
    try {
      return await respond(request, asked++);
    } catch (error) {
      return { status: 500, error: { message: `The test server's respond function threw: ${String(error)}` } };
    }
  }

  /** Draws the fault synchronously, so that the Nth request recorded always takes the Nth draw. */
  async function choose(request: RecordedRequest): Promise<ServerReply> {
    const drawn = drawFault();
    if (drawn === undefined) return ask(request);
    if (drawn.fault === 'delay' && drawn.reply === undefined) return { ...drawn, reply: await ask(request) };
    return drawn;
  }

  function planner(request: RecordedRequest): Planner {
    const self: Planner = {
      request,
      plan(reply) {
        if ('fault' in reply) {
          faultsInjected[reply.fault] += 1;
          return faultPlan(reply, self);
        }
        if ('status' in reply) return errorPlan(reply.status, reply.error ?? {}, reply.retryAfter);
        return answerPlan(self.answer(reply), reply, request);
      },
      answer: (reply) => buildAnswer(reply, request, ids),
    };
    return self;
  }

  async function plan(req: IncomingMessage, receivedAt: number): Promise<Plan> {
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
    const request: Recorded = { body, headers: req.headers, stream: body.stream === true, receivedAt, fault: undefined };
    requests.push(request);
    const reply = await choose(request);
    if ('fault' in reply) request.fault = reply.fault;
    return planner(request).plan(reply);
  }

  const server = createServer((req, res) => {
    const receivedAt = performance.now();
    void plan(req, receivedAt)
      .catch((error: unknown) => errorPlan(500, { message: `The test server failed: ${String(error)}` }))
      .then((p) => write(res, p));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    faultsInjected,
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      })),
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

/** Checks the settings and returns the draw for each successive chat request. */
function faultDrawer(config: RandomFaults): () => FaultReply | undefined {
  if (!(config.rate >= 0 && config.rate <= 1)) throw new RangeError(`faults.rate must be from 0 to 1, not ${config.rate}.`);
  if (config.kinds.length === 0) throw new RangeError('faults.kinds must name at least one fault.');
  if (!Number.isSafeInteger(config.seed)) throw new RangeError(`faults.seed must be an integer, not ${config.seed}.`);
  const kinds = config.kinds.map((kind): FaultReply => (typeof kind === 'string' ? { fault: kind } : kind));
  const next = seededRandom(config.seed);
  return () => {
    const hit = next() < config.rate;
    const kind = kinds[Math.floor(next() * kinds.length)];
    return hit ? kind : undefined;
  };
}


function faultPlan(fault: FaultReply, planner: Planner): Plan {
  switch (fault.fault) {
    case 'rate-limit':
      return errorPlan(429, {}, fault.retryAfter ?? DEFAULT_RETRY_AFTER_SECONDS);
    case 'server-error':
      return errorPlan(fault.status ?? 500, {});
    case 'delay': {
      const late = planner.plan(fault.reply ?? FILLER);
      return { ...late, delayMs: late.delayMs + fault.ms };
    }
    case 'stall':
    case 'drop': {
      const afterChunks = fault.afterChunks ?? 0;
      if (afterChunks <= 0) return { kind: 'silence', delayMs: 0, then: fault.fault };
      return cutShort(planner.plan(fault.reply ?? FILLER), afterChunks, fault.fault, planner.request.stream);
    }
    case 'malformed':
      return malformedPlan(fault.variant, fault.reply ?? FILLER, planner);
  }
}

function cutShort(plan: Plan, afterChunks: number, then: 'drop' | 'stall', streamed: boolean): Plan {
  if (plan.kind === 'silence') return { ...plan, then };
  const pieces = streamed ? plan.pieces.slice(0, afterChunks) : [firstHalf(plan.pieces.join(''))];
  return { ...plan, pieces, then };
}

function malformedPlan(variant: MalformedVariant, reply: CompletionReply, planner: Planner): Plan {
  if (variant === 'not-json') return bodyPlan(200, 'application/json', PROXY_ERROR_TEXT);
  if (variant === 'html') return bodyPlan(200, 'text/html; charset=utf-8', LOGIN_PAGE);
  const { request } = planner;
  const answer = planner.answer(reply);
  const chunks = (): string[] => sentChunks(answer, reply, request).map((chunk) => JSON.stringify(chunk));
  switch (variant) {
    case 'truncated-json': {
      if (!request.stream) return bodyPlan(200, 'application/json', firstHalf(JSON.stringify(completionBody(answer))));
      const events = chunks();
      const last = events.pop() ?? '';
      return ssePlan([...events.map(sseEvent), `data: ${firstHalf(last)}`]);
    }
    case 'broken-sse': {
      const events = chunks();
      const broken = Math.floor(events.length / 2);
      return ssePlan([
        ...events.map((event, index) => (index === broken ? sseEvent(firstHalf(event)) : sseEvent(event))),
        sseEvent('[DONE]'),
      ]);
    }
    case 'no-choices':
      return request.stream
        ? ssePlan([...sentChunks(answer, reply, request).map((c) => sseEvent(JSON.stringify(withoutChoices(c)))), sseEvent('[DONE]')])
        : json(200, withoutChoices(completionBody(answer)));
  }
}

function withoutChoices(value: ChatCompletion | ChatCompletionChunk): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'choices'));
}

function firstHalf(text: string): string {
  return text.slice(0, Math.floor(text.length / 2));
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

function answerPlan(answer: Answer, reply: CompletionReply, request: RecordedRequest): Plan {
  if (!request.stream) return json(200, completionBody(answer));
  return ssePlan([...sentChunks(answer, reply, request).map((chunk) => sseEvent(JSON.stringify(chunk))), sseEvent('[DONE]')]);
}

/** The chunks a streamed answer is sent as, after the reply's own rewriting. */
function sentChunks(answer: Answer, reply: CompletionReply, request: RecordedRequest): ChatCompletionChunk[] {
  const chunks = streamChunks(answer, includeUsage(request.body));
  return reply.mapChunks ? reply.mapChunks(chunks) : chunks;
}

function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

function ssePlan(events: readonly string[]): Plan {
  return {
    kind: 'response',
    delayMs: 0,
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
    pieces: events,
    then: 'end',
  };
}

function bodyPlan(status: number, contentType: string, text: string, headers: Record<string, string> = {}): Plan {
  return {
    kind: 'response',
    delayMs: 0,
    status,
    headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)), ...headers },
    pieces: [text],
    then: 'end',
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Plan {
  return bodyPlan(status, 'application/json', JSON.stringify(body), headers);
}

const ERROR_TYPES: Readonly<Record<number, { type: string; code: string | null; message: string }>> = {
  400: { type: 'invalid_request_error', code: null, message: 'Bad request.' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Forbidden.' },
  404: { type: 'invalid_request_error', code: null, message: 'Not found.' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached.' },
  502: { type: 'server_error', code: null, message: 'Bad gateway.' },
  503: { type: 'server_error', code: null, message: 'The engine is currently overloaded, please try again later.' },
};

function errorPlan(status: number, error: NonNullable<ErrorReply['error']>, retryAfter?: number | Date): Plan {
  const defaults = ERROR_TYPES[status] ?? { type: 'server_error', code: null, message: 'The server had an error.' };
  const wire: WireError = {
    message: error.message ?? defaults.message,
    type: error.type ?? defaults.type,
    param: null,
    code: error.code === undefined ? defaults.code : error.code,
  };
  if (retryAfter === undefined) return json(status, { error: wire });
  const header = typeof retryAfter === 'number' ? String(retryAfter) : retryAfter.toUTCString();
  return json(status, { error: wire }, { 'retry-after': header });
}

/** Carries out a plan. Never throws for a client that has gone: it stops writing. */
async function write(res: ServerResponse, plan: Plan): Promise<void> {
  if (plan.delayMs > 0) await pause(res, plan.delayMs);
  if (res.destroyed) return;
  if (plan.kind === 'silence') {
    if (plan.then === 'drop') res.destroy();
    return;
  }
  res.writeHead(plan.status, plan.headers);
  if (plan.then === 'end') {
    for (const piece of plan.pieces) res.write(piece);
    res.end();
    return;
  }
  // What gets out before a drop must reach the client first: destroying a socket discards unsent data.
  res.flushHeaders();
  for (const piece of plan.pieces) {
    if (!(await flushed(res, piece))) return;
  }
  if (plan.then === 'drop') res.destroy();
}

/** Waits `ms`, or less if the connection closes first (the client gave up, or the server is closing). */
function pause(res: ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      res.off('close', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    res.once('close', finish);
  });
}

/** Writes a piece and waits until it is handed to the operating system; false if the connection is gone. */
function flushed(res: ServerResponse, piece: string): Promise<boolean> {
  return new Promise((resolve) => {
    const gone = (): void => resolve(false);
    res.once('close', gone);
    res.write(piece, (error) => {
      res.off('close', gone);
      resolve(!error && !res.destroyed);
    });
  });
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
