import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { describeTarget, type EgressPolicy, type ResolvedAddress, type Resolve } from './egress';

/** A request as a sandboxed tool's `ctx.fetch` makes it: plain data, copied out of the isolate. */
export interface EgressRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string | undefined;
  /** `follow` (the default) follows redirects, checking each hop; `manual` returns the 3xx; `error` fails. */
  readonly redirect: 'follow' | 'manual' | 'error';
}

/** The response given back to the tool: plain data, copied into the isolate. */
export interface EgressResponse {
  readonly status: number;
  readonly statusText: string;
  /** The URL of the last hop. */
  readonly url: string;
  readonly redirected: boolean;
  /** Lowercase names; a header sent several times appears several times. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body decoded as UTF-8. */
  readonly body: string;
}

export interface EgressFetchOptions {
  readonly policy: EgressPolicy;
  readonly resolve: Resolve;
  readonly signal: AbortSignal;
  readonly maxResponseBytes: number;
  readonly maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers the host sets itself, or that would let a tool confuse the connection. */
const DROPPED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'accept-encoding',
  'proxy-authorization',
  'proxy-connection',
]);
/** Headers that do not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie']);

/**
 * Makes a sandboxed tool's HTTP request on its behalf. Every hop is checked against the tool's
 * egress policy before anything is sent, and the connection goes to the very address that was
 * checked: the host name is not looked up a second time, so DNS cannot answer differently in
 * between. Redirects are followed here, never by the HTTP client, so that each one is checked.
 * Throws EgressDeniedError when a hop is not permitted; network failures throw ordinary errors.
 */
export async function egressFetch(request: EgressRequest, options: EgressFetchOptions): Promise<EgressResponse> {
  const maxRedirects = options.maxRedirects ?? 10;
  let url = parseUrl(request.url);
  let method = request.method;
  let body = request.body;
  let headers = request.headers.filter(([name]) => !DROPPED_HEADERS.has(name.toLowerCase()));
  let from: URL | undefined;
  for (let hop = 0; ; hop++) {
    options.signal.throwIfAborted();
    const addresses = await options.policy.check(url, method, options.resolve, from);
    const response = await send(url, method, headers, body, addresses, options.signal);
    const location = response.headers.location;
    const status = response.statusCode ?? 0;
    if (!REDIRECTS.has(status) || typeof location !== 'string' || request.redirect === 'manual') {
      return {
        status,
        statusText: response.statusMessage ?? '',
        url: url.href,
        redirected: from !== undefined,
        headers: headerPairs(response.rawHeaders),
        body: await readBody(response, options.maxResponseBytes, url),
      };
    }
    response.destroy();
    if (request.redirect === 'error') throw new TypeError(`${describeTarget(url)} answered with a redirect (${status}), and redirect is 'error'`);
    if (hop >= maxRedirects) throw new TypeError(`more than ${maxRedirects} redirects, the last from ${url.href}`);
    const next = parseUrl(location, url);
    if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
      headers = headers.filter(([name]) => !name.toLowerCase().startsWith('content-'));
    }
    if (next.origin !== url.origin) headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
    from = url;
    url = next;
  }
}

function parseUrl(text: string, base?: URL): URL {
  try {
    return new URL(text, base);
  } catch {
    throw new TypeError(`${JSON.stringify(text)} is not a valid URL`);
  }
}

/** A lookup that answers with the addresses already checked, whatever it is asked. */
export function pinnedLookup(pinned: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, pinned.map(({ address, family }) => ({ address, family })));
    else callback(null, pinned[0]!.address, pinned[0]!.family);
  };
}

function send(
  url: URL,
  method: string,
  headers: readonly (readonly [string, string])[],
  body: string | undefined,
  addresses: readonly ResolvedAddress[],
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const outgoing: Record<string, string[]> = { 'accept-encoding': ['identity'] };
  for (const [name, value] of headers) (outgoing[name.toLowerCase()] ??= []).push(value);
  if (body !== undefined) outgoing['content-length'] = [String(Buffer.byteLength(body))];
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise((resolve, reject) => {
    const options = {
      hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method,
      headers: outgoing,
      // A fresh connection each time, without the environment's proxy: the socket goes to a checked address.
      agent: false as const,
      lookup: pinnedLookup(addresses),
      signal,
    };
    const req = url.protocol === 'https:' ? httpsRequest(options, resolve) : httpRequest(options, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The body as text, refusing one larger than `maxBytes` as soon as that is known (from its
 * Content-Length, or as it arrives), without reading the rest.
 */
function readBody(response: IncomingMessage, maxBytes: number, url: URL): Promise<string> {
  const overLimit = () =>
    new RangeError(`the response from ${describeTarget(url)} is larger than ${maxBytes} bytes, the most a sandboxed tool may read, so it was refused`);
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.destroy();
    return Promise.reject(overLimit());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        fail(overLimit());
        response.destroy();
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    response.on('error', fail);
    response.on('aborted', () => fail(new Error(`the response from ${describeTarget(url)} was cut off before its end`)));
  });
}

function headerPairs(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let index = 0; index + 1 < raw.length; index += 2) pairs.push([raw[index]!.toLowerCase(), raw[index + 1]!]);
  return pairs;
}
