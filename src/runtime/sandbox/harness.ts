import { functionSource } from '../functionSource';

/**
 * The code that runs inside every sandbox context before the tool: it builds the tool's `ctx`
 * (`log`, `fetch`, the call's identity) out of the plain functions the host passes in, and calls
 * `run`. It reaches the host only through those functions, whose arguments and results are
 * copied; the isolate never holds a reference to a host object.
 *
 * `sandboxHarness` is compiled inside the isolate from its own source text, so it must refer to
 * nothing outside itself but JavaScript built-ins.
 */

/** The host's functions as the harness sees them. */
type HostLog = (message: string) => void;
type HostFetch = (id: number, request: unknown) => void;

interface CallMeta {
  readonly runId: string;
  readonly stepId: number;
  readonly callIndex: number;
  readonly idempotencyKey: string;
}

/** `entry('invoke', run, args, meta, log, fetch)` starts the call; `entry('deliver', id, ok, payload)` settles a fetch. */
export type HarnessEntry = (kind: string, first: unknown, second: unknown, third: unknown, fourth: unknown, fifth: unknown) => unknown;

export function sandboxHarness(): HarnessEntry {
  const freeze = Object.freeze;
  const parseJson = JSON.parse;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  let nextId = 0;
  let hostFetch: HostFetch | undefined;

  const headersOf = (pairs: readonly (readonly [string, string])[]) => {
    const values = (name: unknown) => {
      const wanted = String(name).toLowerCase();
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
      text: () => Promise.resolve(data.body),
      json: () => new Promise((resolve) => resolve(parseJson(data.body))),
    });

  const errorOf = (data: { name: string; message: string }) => {
    const error = data.name === 'TypeError' ? new TypeError(data.message) : new Error(data.message);
    if (data.name !== 'TypeError') error.name = data.name;
    return error;
  };

  const headerPairs = (headers: unknown): [string, string][] => {
    if (headers === undefined || headers === null) return [];
    const entries: unknown[] = Array.isArray(headers) ? headers : Object.entries(headers);
    return entries.map((entry) => {
      if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError('headers must be an object or a list of [name, value] pairs');
      return [String(entry[0]), String(entry[1])];
    });
  };

  const fetch = (input: unknown, init?: unknown): Promise<unknown> => {
    try {
      const options = (init ?? {}) as { method?: unknown; headers?: unknown; body?: unknown; redirect?: unknown };
      if (options.body !== undefined && options.body !== null && typeof options.body !== 'string') {
        throw new TypeError('fetch in the sandbox takes a text body only: JSON.stringify it first');
      }
      const request = {
        url: String(input),
        method: String(options.method ?? 'GET').toUpperCase(),
        headers: headerPairs(options.headers),
        body: typeof options.body === 'string' ? options.body : undefined,
        redirect: options.redirect === undefined ? 'follow' : String(options.redirect),
      };
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        hostFetch?.(id, request);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  };

  return (kind, first, second, third, fourth, fifth) => {
    if (kind === 'deliver') {
      const waiting = pending.get(first as number);
      pending.delete(first as number);
      if (second === true) waiting?.resolve(responseOf(third as Parameters<typeof responseOf>[0]));
      else waiting?.reject(errorOf(third as Parameters<typeof errorOf>[0]));
      return undefined;
    }
    const run = first as (args: unknown, ctx: unknown) => unknown;
    const meta = third as CallMeta;
    const hostLog = fourth as HostLog;
    hostFetch = fifth as HostFetch;
    const log = (message: unknown) => hostLog(String(message));
    const write = (...parts: unknown[]) => log(parts.map((part) => (typeof part === 'string' ? part : String(part))).join(' '));
    Object.defineProperty(globalThis, 'console', {
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
      runId: meta.runId,
      stepId: meta.stepId,
      callIndex: meta.callIndex,
      idempotencyKey: meta.idempotencyKey,
      signal,
      log,
      fetch,
      subAgent: () => Promise.reject(new Error('a sandboxed tool cannot start sub-agents')),
    });
    return run(second, ctx);
  };
}

/** The harness as a script whose value is its entry function. */
export const HARNESS_SCRIPT = `(${functionSource(sandboxHarness)})()`;
