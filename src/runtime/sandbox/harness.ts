import { functionSource } from '../functionSource';

/**
 * The code that runs inside every sandbox context before the tool: it builds the tool's `ctx`
 * (`log`, `fetch`, the call's identity) out of the plain functions the host passes in, calls
 * `run`, and checks what comes back before any of it leaves the isolate. It reaches the host only
 * through those functions, whose arguments and results are copied; the isolate never holds a
 * reference to a host object.
 *
 * The harness runs first in a fresh context, so it keeps its own references to the built-ins it
 * relies on: a tool that replaces `JSON.stringify` or `String.prototype.slice` changes only what
 * its own code sees. The limits are enforced here, inside the isolate, so that nothing over them
 * is ever copied out: a result over the output limit is measured and refused (a string's length
 * is read without flattening it), an error message is cut to its first characters, a log line
 * too. WebAssembly is removed from the context unless the tool was granted it.
 *
 * `sandboxHarness` is compiled inside the isolate from its own source text, so it must refer to
 * nothing outside itself but JavaScript built-ins.
 */

/** The host's functions as the harness sees them. */
type HostLog = (message: string) => void;
type HostFetch = (id: number, request: unknown) => void;
/** Takes a tool's span attributes as JSON text (the host keeps what is within bounds). */
type HostAnnotate = (attributes: string) => void;

/** What `invoke` is given about the call. */
export interface HarnessCall {
  readonly runId: string;
  readonly stepId: number;
  readonly callIndex: number;
  readonly idempotencyKey: string;
  readonly traceparent: string;
  readonly wasm: boolean;
  readonly maxOutputBytes: number;
  readonly maxErrorChars: number;
  readonly maxLogChars: number;
  /** The most characters of URL, headers and body one `ctx.fetch` may send. */
  readonly maxRequestChars: number;
}

/** What an invocation settles with: plain data, copied out of the isolate. */
export type HarnessOutcome =
  | { readonly kind: 'text' | 'json'; readonly text: string }
  | { readonly kind: 'none' }
  /** The result is larger than the output limit: at least `bytes` bytes (exactly, unless `atLeast`). */
  | { readonly kind: 'over'; readonly bytes: number; readonly atLeast: boolean }
  /** The result is not plain data (a function, a symbol, a Map...), or cannot be written as JSON. */
  | { readonly kind: 'unclonable'; readonly message: string }
  /** The tool threw this; `cut` characters of its message were cut. */
  | { readonly kind: 'threw'; readonly name: string | undefined; readonly message: string; readonly cut: number; readonly code: string | undefined };

/** `entry('invoke', run, args, call, log, fetch, annotate)` starts the call; `entry('deliver', id, ok, payload)` settles a fetch. */
export type HarnessEntry = (kind: string, first: unknown, second: unknown, third: unknown, fourth: unknown, fifth: unknown, sixth: unknown) => unknown;

export function sandboxHarness(): HarnessEntry {
  const freeze = Object.freeze;
  const getPrototypeOf = Object.getPrototypeOf;
  const defineProperty = Object.defineProperty;
  const parseJson = JSON.parse;
  const stringify = JSON.stringify;
  const apply = Reflect.apply;
  const isArray = Array.isArray;
  const toText = String;
  const slice = String.prototype.slice;
  const charCodeAt = String.prototype.charCodeAt;
  const NativePromise = Promise;
  const promiseThen = Promise.prototype.then;
  const NativeError = Error;
  const NativeTypeError = TypeError;
  /** Objects JSON would write as `{}` without complaint, though they hold data. */
  const notPlain: readonly unknown[] = [Map.prototype, Set.prototype, WeakMap.prototype, WeakSet.prototype, Promise.prototype];
  const notPlainNames = ['Map', 'Set', 'WeakMap', 'WeakSet', 'Promise'];
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  let nextId = 0;
  let hostFetch: HostFetch | undefined;
  let maxRequestChars = 0;

  const headersOf = (pairs: readonly (readonly [string, string])[]) => {
    const values = (name: unknown) => {
      const wanted = toText(name).toLowerCase();
      return pairs.filter((pair) => pair[0] === wanted).map((pair) => pair[1]);
    };
    return freeze({
      get: (name: unknown) => {
        const found = values(name);
        return found.length === 0 ? null : found.join(', ');
      },
      has: (name: unknown) => values(name).length > 0,
      forEach: (callback: (value: string, name: string) => void) => {
        for (const pair of pairs) callback(pair[1], pair[0]);
      },
    });
  };

  const responseOf = (data: {
    status: number;
    statusText: string;
    url: string;
    redirected: boolean;
    headers: readonly (readonly [string, string])[];
    body: string;
  }) =>
    freeze({
      ok: data.status >= 200 && data.status < 300,
      status: data.status,
      statusText: data.statusText,
      url: data.url,
      redirected: data.redirected,
      headers: headersOf(data.headers),
      text: () => NativePromise.resolve(data.body),
      json: () => new NativePromise((resolve) => resolve(parseJson(data.body))),
    });

  const errorOf = (data: { name: string; message: string }) => {
    const error = data.name === 'TypeError' ? new NativeTypeError(data.message) : new NativeError(data.message);
    if (data.name !== 'TypeError') error.name = data.name;
    return error;
  };

  const headerPairs = (headers: unknown): [string, string][] => {
    if (headers === undefined || headers === null) return [];
    const entries: unknown[] = isArray(headers) ? headers : Object.entries(headers);
    return entries.map((entry) => {
      if (!isArray(entry) || entry.length !== 2) throw new NativeTypeError('headers must be an object or a list of [name, value] pairs');
      return [toText(entry[0]), toText(entry[1])];
    });
  };

  const fetch = (input: unknown, init?: unknown): Promise<unknown> => {
    try {
      const options = (init ?? {}) as { method?: unknown; headers?: unknown; body?: unknown; redirect?: unknown };
      if (options.body !== undefined && options.body !== null && typeof options.body !== 'string') {
        throw new NativeTypeError('fetch in the sandbox takes a text body only: JSON.stringify it first');
      }
      const request = {
        url: toText(input),
        method: toText(options.method ?? 'GET').toUpperCase(),
        headers: headerPairs(options.headers),
        body: typeof options.body === 'string' ? options.body : undefined,
        redirect: options.redirect === undefined ? 'follow' : toText(options.redirect),
      };
      let size = request.url.length + (request.body?.length ?? 0);
      for (const [name, value] of request.headers) size += name.length + value.length;
      if (size > maxRequestChars) throw new NativeTypeError(`a request from the sandbox may carry at most ${maxRequestChars} characters of URL, headers and body`);
      const id = ++nextId;
      return new NativePromise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        hostFetch?.(id, request);
      });
    } catch (error) {
      return NativePromise.reject(error);
    }
  };

  /** UTF-8 bytes of a string no longer than the limit (longer ones are over it by their length alone). */
  const utf8Bytes = (text: string): number => {
    let bytes = 0;
    for (let index = 0; index < text.length; index++) {
      const unit = apply(charCodeAt, text, [index]) as number;
      if (unit < 0x80) bytes += 1;
      else if (unit < 0x800) bytes += 2;
      else if (unit >= 0xd800 && unit < 0xdc00 && index + 1 < text.length) {
        bytes += 4;
        index += 1;
      } else bytes += 3;
    }
    return bytes;
  };

  const replacer = (key: string, value: unknown): unknown => {
    const type = typeof value;
    const where = key === '' ? '' : ` at ${stringify(key)}`;
    if (type === 'function' || type === 'symbol') throw new NativeTypeError(`a ${type}${where} could not be cloned`);
    if (type === 'object' && value !== null) {
      const prototype: unknown = getPrototypeOf(value);
      for (let index = 0; index < notPlain.length; index++) {
        if (notPlain[index] === prototype) throw new NativeTypeError(`a ${notPlainNames[index]!}${where} could not be cloned`);
      }
    }
    return value;
  };

  const outcomeOf = (value: unknown, maxBytes: number): unknown => {
    if (value === undefined) return { kind: 'none' };
    let text: string | undefined;
    const kind = typeof value === 'string' ? 'text' : 'json';
    if (typeof value === 'string') text = value;
    else {
      try {
        text = stringify(value, replacer);
      } catch (error) {
        return { kind: 'unclonable', message: apply(slice, toText((error as { message?: unknown } | null)?.message ?? error), [0, 500]) };
      }
      if (text === undefined) return { kind: 'none' };
    }
    if (text.length > maxBytes) return { kind: 'over', bytes: text.length, atLeast: true };
    if (text.length * 3 > maxBytes) {
      const bytes = utf8Bytes(text);
      if (bytes > maxBytes) return { kind: 'over', bytes, atLeast: false };
    }
    return { kind, text };
  };

  /** Reads what the tool threw, each part once, cutting its message inside the isolate. */
  const thrownOf = (error: unknown, maxChars: number): unknown => {
    let name: string | undefined;
    let message = '';
    let code: string | undefined;
    try {
      if (typeof error === 'object' && error !== null) {
        const { name: ownName, message: ownMessage, code: ownCode } = error as { name?: unknown; message?: unknown; code?: unknown };
        name = typeof ownName === 'string' ? apply(slice, ownName, [0, 100]) : undefined;
        message = typeof ownMessage === 'string' ? ownMessage : toText(ownMessage ?? error);
        code = typeof ownCode === 'string' ? apply(slice, ownCode, [0, 100]) : undefined;
      } else message = toText(error);
    } catch {
      message = 'it threw a value that could not be read';
    }
    const cut = message.length > maxChars ? message.length - maxChars : 0;
    return { kind: 'threw', name, message: cut > 0 ? apply(slice, message, [0, maxChars]) : message, cut, code };
  };

  return (kind, first, second, third, fourth, fifth, sixth) => {
    if (kind === 'deliver') {
      const waiting = pending.get(first as number);
      pending.delete(first as number);
      if (second === true) waiting?.resolve(responseOf(third as Parameters<typeof responseOf>[0]));
      else waiting?.reject(errorOf(third as Parameters<typeof errorOf>[0]));
      return undefined;
    }
    const run = first as (args: unknown, ctx: unknown) => unknown;
    const call = third as HarnessCall;
    const hostLog = fourth as HostLog;
    hostFetch = fifth as HostFetch;
    const hostAnnotate = sixth as HostAnnotate;
    const { maxLogChars } = call;
    maxRequestChars = call.maxRequestChars;
    if (!call.wasm) delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
    const log = (message: unknown) => {
      const text = toText(message);
      hostLog(text.length > maxLogChars ? apply(slice, text, [0, maxLogChars + 1]) : text);
    };
    const write = (...parts: unknown[]) => log(parts.map((part) => (typeof part === 'string' ? part : toText(part))).join(' '));
    defineProperty(globalThis, 'console', {
      value: freeze({ log: write, info: write, warn: write, error: write, debug: write }),
      writable: true,
      configurable: true,
    });
    const noop = () => undefined;
    const signal = freeze({
      aborted: false,
      reason: undefined,
      onabort: null,
      throwIfAborted: noop,
      addEventListener: noop,
      removeEventListener: noop,
    });
    const ctx = freeze({
      runId: call.runId,
      stepId: call.stepId,
      callIndex: call.callIndex,
      idempotencyKey: call.idempotencyKey,
      traceparent: call.traceparent,
      signal,
      log,
      fetch,
      annotate: (attributes: unknown) => {
        if (typeof attributes !== 'object' || attributes === null) return;
        const text = stringify(attributes);
        // As a log line is cut: a tool cannot push more than this across at once.
        if (text.length <= maxLogChars) hostAnnotate(text);
      },
      subAgent: () => NativePromise.reject(new NativeError('a sandboxed tool cannot start sub-agents')),
    });
    const { maxOutputBytes, maxErrorChars } = call;
    return new NativePromise((resolve) => {
      const settled = (value: unknown) => resolve(outcomeOf(value, maxOutputBytes));
      const failed = (error: unknown) => resolve(thrownOf(error, maxErrorChars));
      try {
        const result = run(second, ctx);
        void apply(promiseThen, new NativePromise((settle) => settle(result)), [settled, failed]);
      } catch (error) {
        failed(error);
      }
    });
  };
}

/** The harness as a script whose value is its entry function. */
export const HARNESS_SCRIPT = `(${functionSource(sandboxHarness)})()`;
