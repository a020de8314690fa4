import ivm from 'isolated-vm';
import type { Tool } from '../agent/define';
import { describeError } from '../errors';
import { systemResolve, type Resolve } from './egress';
import { egressFetch, type EgressRequest } from './egressFetch';
import { HARNESS_SCRIPT, type HarnessEntry } from './harness';
import { EgressDeniedError, ToolSandboxError } from './sandboxError';
import { toolScript, type ToolScript } from './toolScript';
import type { SandboxCall, ToolSandbox } from './toolSandbox';

export interface IsolatedVmSandboxOptions {
  /**
   * Idle isolates kept warm per memory limit, each with a fresh context prepared for its next
   * call. 0 starts a new isolate for every call and disposes it after (cold). Default 2.
   */
  readonly warmIsolates?: number;
  /** The most calls running at once (one isolate each); more wait their turn. Default 8. */
  readonly maxIsolates?: number;
  /** How `ctx.fetch` resolves host names before checking the addresses; tests replace it. */
  readonly resolve?: Resolve;
}

const MAX_LOG_CHARS = 10_000;
const MAX_LOGS_PER_CALL = 1_000;
const MAX_FETCHES_PER_CALL = 100;
const MAX_RESPONSE_BYTES = 10 * 2 ** 20;
const MAX_COMPILED_TOOLS = 100;
const REDIRECT_MODES = new Set(['follow', 'manual', 'error']);

/** Names whose absence means the tool expected Node, or a browser, rather than plain JavaScript. */
const NODE_GLOBALS = new Set(['require', 'process', 'module', 'exports', 'Buffer', '__dirname', '__filename', 'global', 'setImmediate']);
const WEB_GLOBALS = new Set([
  'fetch',
  'setTimeout',
  'setInterval',
  'clearTimeout',
  'clearInterval',
  'queueMicrotask',
  'structuredClone',
  'URL',
  'URLSearchParams',
  'TextEncoder',
  'TextDecoder',
  'AbortController',
  'AbortSignal',
  'Headers',
  'Request',
  'Response',
  'atob',
  'btoa',
  'crypto',
  'performance',
  'navigator',
  'Blob',
  'FormData',
  'Event',
  'EventTarget',
]);

interface PreparedContext {
  readonly context: ivm.Context;
  /** The harness's entry function in that context. */
  readonly entry: ivm.Reference<HarnessEntry>;
  /** The run function of the tool this isolate ran last, evaluated ahead in case it runs next. */
  readonly tool?: { readonly code: string; readonly run: ivm.Reference<unknown> };
}

/**
 * Runs sandboxed tools in isolated-vm: each call in a V8 isolate of its own while it runs, with a
 * heap limit, a CPU limit, a wall-clock limit, no Node APIs and nothing from the host but what the
 * harness passes in (copied arguments, `log`, egress-checked `fetch`).
 *
 * Isolates are pooled; contexts never are. Every call gets a context nobody has used, so one call
 * never sees another's globals or polluted built-ins. Creating a context costs about 0.2 ms, so a
 * warm isolate prepares the next one in the background as soon as a call ends, off the next
 * caller's path. An isolate whose call was stopped (CPU, memory, time, egress, cancellation) is
 * disposed, never reused.
 */
export class IsolatedVmSandbox implements ToolSandbox {
  private readonly warmIsolates: number;
  private readonly maxIsolates: number;
  private readonly resolve: Resolve;
  private readonly idle = new Map<number, WarmIsolate[]>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private closed = false;

  constructor(options: IsolatedVmSandboxOptions = {}) {
    this.warmIsolates = options.warmIsolates ?? 2;
    this.maxIsolates = options.maxIsolates ?? 8;
    this.resolve = options.resolve ?? systemResolve;
  }

  async run(call: SandboxCall): Promise<unknown> {
    const script = await toolScript(call.tool);
    call.ctx.signal.throwIfAborted();
    if (this.closed) throw new ToolSandboxError('the sandbox has been closed', 'unavailable');
    await this.turn(call.ctx.signal);
    let warm: WarmIsolate | undefined;
    try {
      // The longest idle first: the likeliest to have its next context ready.
      warm = this.idle.get(call.grant.memoryMb)?.shift() ?? newIsolate(call.grant.memoryMb);
      const prepared = await warm.take().catch((error: unknown) => {
        throw new ToolSandboxError(`the sandbox could not prepare a context for it (${describeError(error)})`, 'unavailable', { cause: error });
      });
      return await new IsolatedCall(warm, prepared, script, call, this.resolve).result();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
      if (warm) this.recycle(warm);
    }
  }

  /** Starts `count` warm isolates for tools of this memory limit ahead of their first call. */
  prewarm(memoryMb: number, count = this.warmIsolates): void {
    const list = this.idleList(memoryMb);
    while (list.length < Math.min(count, this.warmIsolates)) {
      const warm = newIsolate(memoryMb);
      warm.prepare();
      list.push(warm);
    }
  }

  /** Settles once every idle isolate has its next context ready. */
  async whenPrepared(): Promise<void> {
    await Promise.all([...this.idle.values()].flat().map((warm) => warm.ready()));
  }

  close(): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const warm of list.splice(0)) warm.dispose();
    return Promise.resolve();
  }

  private async turn(signal: AbortSignal): Promise<void> {
    while (this.running >= this.maxIsolates) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener('abort', stop);
          resolve();
        };
        const stop = () => {
          const index = this.waiting.indexOf(go);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(signal.reason);
        };
        this.waiting.push(go);
        signal.addEventListener('abort', stop, { once: true });
      });
    }
    this.running += 1;
  }

  private recycle(warm: WarmIsolate): void {
    const list = this.idleList(warm.memoryMb);
    if (this.closed || warm.poisoned || warm.isolate.isDisposed || list.length >= this.warmIsolates) {
      warm.dispose();
      return;
    }
    list.push(warm);
    warm.prepareSoon();
  }

  private idleList(memoryMb: number): WarmIsolate[] {
    let list = this.idle.get(memoryMb);
    if (!list) this.idle.set(memoryMb, (list = []));
    return list;
  }
}

function newIsolate(memoryMb: number): WarmIsolate {
  try {
    return new WarmIsolate(memoryMb);
  } catch (error) {
    throw new ToolSandboxError(`the sandbox could not start an isolate for it (${describeError(error)})`, 'unavailable', { cause: error });
  }
}

/** One isolate, its compiled scripts, and the fresh context its next call will use. */
class WarmIsolate {
  readonly isolate: ivm.Isolate;
  /** Set when a call was stopped in it: it is disposed rather than reused. */
  poisoned = false;
  private readonly harness: ivm.Script;
  private readonly scripts = new Map<string, ivm.Script>();
  private next: Promise<PreparedContext> | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  /** The tool that ran last, when evaluating its script has no effect but creating its function. */
  private last: string | undefined;

  constructor(readonly memoryMb: number) {
    this.isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      // isolated-vm calls this only when V8 has lost control of the isolate; its advice is to end the process.
      onCatastrophicError: (message) => {
        process.stderr.write(`keel: isolated-vm reported a catastrophic error, so the runtime process stops: ${message}\n`);
        process.abort();
      },
    });
    this.harness = this.isolate.compileScriptSync(HARNESS_SCRIPT, { filename: 'keel-sandbox-harness.js' });
  }

  /** Starts creating the next call's context on the isolate's own thread. */
  prepare(): void {
    this.unschedule();
    if (this.next) return;
    const next = this.isolate.createContext().then((context) => this.enter(context));
    next.catch(() => undefined);
    this.next = next;
  }

  /**
   * Prepares the next context once the caller of the call that just ended has had its result:
   * asking the isolate for a context takes the host thread a while, which is not the caller's.
   */
  prepareSoon(): void {
    if (this.next || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.prepare();
    });
  }

  /** The context for the call starting now: the prepared one, or a new one. */
  take(): Promise<PreparedContext> {
    this.unschedule();
    const next = this.next ?? this.isolate.createContext().then((context) => this.enter(context));
    this.next = undefined;
    return next;
  }

  async ready(): Promise<void> {
    if (this.scheduled) this.prepare();
    await this.next?.catch(() => undefined);
  }

  /**
   * The tool's run function in `prepared`'s context: evaluated ahead when it was the last tool
   * (saving a step on the caller's path), else now.
   */
  runFunction(prepared: PreparedContext, tool: Tool, script: ToolScript, cpuMs: number): ivm.Reference<unknown> {
    this.last = script.pure ? script.code : undefined;
    if (prepared.tool?.code === script.code) return prepared.tool.run;
    prepared.tool?.run.release();
    return this.script(tool, script.code).runSync(prepared.context, { reference: true, timeout: cpuMs });
  }

  /** The tool's script compiled in this isolate (once; it can run in any of its contexts). */
  private script(tool: Tool, code: string): ivm.Script {
    let script = this.scripts.get(code);
    if (!script) {
      if (this.scripts.size >= MAX_COMPILED_TOOLS) {
        const [oldest] = this.scripts.keys();
        if (oldest !== undefined) this.scripts.delete(oldest);
      }
      script = this.isolate.compileScriptSync(code, { filename: `${tool.name}.sandboxed.js` });
      this.scripts.set(code, script);
    }
    return script;
  }

  dispose(): void {
    this.unschedule();
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  private unschedule(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }

  private async enter(context: ivm.Context): Promise<PreparedContext> {
    const entry: ivm.Reference<HarnessEntry> = await this.harness.run(context, { reference: true });
    const last = this.last;
    const script = last === undefined ? undefined : this.scripts.get(last);
    if (last === undefined || !script) return { context, entry };
    const run: ivm.Reference<unknown> = await script.run(context, { reference: true });
    return { context, entry, tool: { code: last, run } };
  }
}

/** One call in its isolate: limits, capabilities and the translation of what went wrong. */
class IsolatedCall {
  private done = false;
  private stopped: Error | undefined;
  private rejectStop: (error: Error) => void = () => undefined;
  private readonly network = new AbortController();
  private readonly cpuStart: bigint;
  private logs = 0;
  private fetches = 0;
  /** Network errors given to the tool, by message, so that one the tool rethrows keeps its code (for retries). */
  private readonly networkErrors = new Map<string, Error>();

  constructor(
    private readonly warm: WarmIsolate,
    private readonly prepared: PreparedContext,
    private readonly script: ToolScript,
    private readonly call: SandboxCall,
    private readonly resolve: Resolve,
  ) {
    this.cpuStart = warm.isolate.cpuTime;
  }

  async result(): Promise<unknown> {
    const { tool, grant, ctx } = this.call;
    const { context, entry } = this.prepared;
    const stop = new Promise<never>((_resolve, reject) => (this.rejectStop = reject));
    stop.catch(() => undefined);
    const wall = setTimeout(
      () => this.kill(new ToolSandboxError(`it did not finish within its ${grant.timeoutMs} ms time limit, so the sandbox stopped it`, 'timeout')),
      grant.timeoutMs,
    );
    const onAbort = () => this.kill(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(describeError(ctx.signal.reason)));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const run = this.warm.runFunction(this.prepared, tool, this.script, grant.cpuMs);
      const args = copyInto(this.call.args, 'arguments');
      const meta = new ivm.ExternalCopy({
        runId: ctx.runId,
        stepId: ctx.stepId,
        callIndex: ctx.callIndex,
        idempotencyKey: ctx.idempotencyKey,
      }).copyInto({ release: true });
      const log = new ivm.Callback((message: unknown) => this.log(message));
      const fetch = new ivm.Callback((id: unknown, request: unknown) => this.startFetch(id, request));
      const invocation = entry.apply(undefined, ['invoke', run.derefInto({ release: true }), args, meta, log, fetch], {
        result: { promise: true, copy: true },
        timeout: grant.cpuMs,
      });
      return await Promise.race([invocation, stop]);
    } catch (error) {
      throw this.explain(error);
    } finally {
      this.done = true;
      clearTimeout(wall);
      ctx.signal.removeEventListener('abort', onAbort);
      // Requests the tool left running end with the call (aborting costs a DOMException, so only then).
      if (this.fetches > 0) this.network.abort();
      if (!this.warm.isolate.isDisposed) {
        entry.release();
        context.release();
      }
    }
  }

  /** Stops the call now: the isolate is disposed, which ends whatever runs in it. */
  private kill(reason: Error): void {
    if (this.done || this.stopped) return;
    this.stopped = reason;
    this.warm.poisoned = true;
    this.network.abort();
    this.warm.dispose();
    this.rejectStop(reason);
  }

  private cpuUsedMs(): number {
    return this.warm.isolate.isDisposed ? 0 : Number(this.warm.isolate.cpuTime - this.cpuStart) / 1e6;
  }

  private log(message: unknown): void {
    if (this.done || typeof message !== 'string') return;
    this.logs += 1;
    if (this.logs > MAX_LOGS_PER_CALL) {
      if (this.logs === MAX_LOGS_PER_CALL + 1) this.call.ctx.log(`(more than ${MAX_LOGS_PER_CALL} log lines; the rest are dropped)`);
      return;
    }
    this.call.ctx.log(message.length > MAX_LOG_CHARS ? `${message.slice(0, MAX_LOG_CHARS)}…` : message);
  }

  private startFetch(id: unknown, request: unknown): void {
    if (this.done || typeof id !== 'number') return;
    let parsed: EgressRequest;
    try {
      parsed = parseRequest(request);
    } catch (error) {
      this.deliver(id, false, { name: 'TypeError', message: describeError(error) });
      return;
    }
    this.fetches += 1;
    if (this.fetches > MAX_FETCHES_PER_CALL) {
      this.deliver(id, false, { name: 'Error', message: `a sandboxed tool call may make at most ${MAX_FETCHES_PER_CALL} requests` });
      return;
    }
    const { grant } = this.call;
    void egressFetch(parsed, {
      policy: grant.egress,
      resolve: this.resolve,
      signal: this.network.signal,
      maxResponseBytes: Math.min(MAX_RESPONSE_BYTES, (grant.memoryMb * 2 ** 20) / 4),
    }).then(
      (response) => this.deliver(id, true, response),
      (error: unknown) => {
        if (error instanceof EgressDeniedError) {
          this.kill(error);
          return;
        }
        if (this.done) return;
        const message = `fetch ${parsed.url} failed: ${describeError(error)}`;
        const hostError = new Error(message, { cause: error });
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string') Object.assign(hostError, { code });
        this.networkErrors.set(message, hostError);
        this.deliver(id, false, { name: error instanceof TypeError ? 'TypeError' : 'Error', message });
      },
    );
  }

  /** Settles a pending `ctx.fetch` inside the isolate, within what is left of the CPU budget. */
  private deliver(id: number, ok: boolean, payload: unknown): void {
    if (this.done || this.stopped) return;
    const left = this.call.grant.cpuMs - this.cpuUsedMs();
    if (left <= 0) {
      this.kill(this.cpuError());
      return;
    }
    try {
      this.prepared.entry
        .apply(undefined, ['deliver', id, ok, copyInto(payload, 'output'), undefined, undefined], { timeout: Math.ceil(left) })
        .catch((error: unknown) => this.kill(this.explain(error)));
    } catch (error) {
      this.kill(this.explain(error));
    }
  }

  private cpuError(): ToolSandboxError {
    this.warm.poisoned = true;
    return new ToolSandboxError(`it exceeded its ${this.call.grant.cpuMs} ms CPU limit, so the sandbox stopped it`, 'cpu');
  }

  /** Turns what came out of the isolate into the error the model and the person read. */
  private explain(error: unknown): Error {
    if (this.stopped) return this.stopped;
    if (error instanceof ToolSandboxError) return error;
    const message = describeError(error);
    const name = error instanceof Error ? error.name : undefined;
    if (this.warm.isolate.isDisposed || /disposed during execution due to memory limit/.test(message)) {
      this.warm.poisoned = true;
      return new ToolSandboxError(`it used more than ${this.call.grant.memoryMb} MB of memory, so the sandbox stopped it`, 'memory');
    }
    if (/^Script execution timed out/.test(message)) return this.cpuError();
    if (name === 'RangeError' && /Maximum call stack size exceeded/.test(message)) {
      return new ToolSandboxError('it ran out of stack (its recursion went too deep) in the sandbox', 'stack');
    }
    const missing = name === 'ReferenceError' ? /^(\S+) is not defined$/.exec(message)?.[1] : undefined;
    if (missing !== undefined) return missingName(missing);
    if (name === 'Error' && message === 'Not supported') {
      return new ToolSandboxError('it tried to import a module, but sandboxed code has no module loader: what run needs must be inside run', 'code');
    }
    if (name === 'TypeError' && /could not be cloned/.test(message)) {
      return new ToolSandboxError(`it returned a value that cannot leave the sandbox (${message}): return plain data`, 'output');
    }
    const network = this.networkErrors.get(message);
    if (network) return network;
    return error instanceof Error ? error : new Error(message);
  }
}

/** What esbuild turns `import()` and `require` into when it bundles an agent file. */
const BUNDLER_IMPORT_HELPERS = new Set(['__toESM', '__require', '__toCommonJS', '__commonJS', '__esm', '__reExport']);

function missingName(name: string): ToolSandboxError {
  const shown = `\`${name}\``;
  if (BUNDLER_IMPORT_HELPERS.has(name)) {
    return new ToolSandboxError(
      `it tried to import a module (its bundled code calls ${shown}), but sandboxed code has no module loader: what run needs must be inside run`,
      'code',
    );
  }
  if (NODE_GLOBALS.has(name)) {
    return new ToolSandboxError(`it used ${shown}, which does not exist in the sandbox: sandboxed tools get no Node APIs`, 'code');
  }
  if (WEB_GLOBALS.has(name)) {
    return new ToolSandboxError(
      `it used ${shown}, which does not exist in the sandbox: it has JavaScript's built-ins only (use ctx.fetch for HTTP)`,
      'code',
    );
  }
  const imported = /^import_\w+$|^\w+_\d+$/.test(name) ? ' (it looks like an import: sandboxed code cannot import modules)' : '';
  return new ToolSandboxError(
    `it used ${shown}, which is not defined in the sandbox${imported}: a sandboxed tool's run function must be self-contained, using only its arguments, ctx and JavaScript's built-ins`,
    'code',
  );
}

/** A deep copy for the isolate (structured clone): never a reference to a host object. */
function copyInto(value: unknown, what: 'arguments' | 'output'): ivm.Copy<unknown> {
  try {
    return new ivm.ExternalCopy(value).copyInto({ release: true });
  } catch (error) {
    throw new ToolSandboxError(`its ${what} cannot be copied into the sandbox (${describeError(error)})`, what === 'arguments' ? 'arguments' : 'output', {
      cause: error,
    });
  }
}

/** Checks a request that came out of the isolate: it is data from untrusted code. */
function parseRequest(request: unknown): EgressRequest {
  if (typeof request !== 'object' || request === null) throw new TypeError('fetch needs a URL');
  const { url, method, headers, body, redirect } = request as Record<string, unknown>;
  if (typeof url !== 'string') throw new TypeError('fetch needs a URL');
  if (typeof method !== 'string' || !/^[A-Z]{1,20}$/.test(method)) throw new TypeError(`${JSON.stringify(method)} is not an HTTP method`);
  if (!Array.isArray(headers) || !headers.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((part) => typeof part === 'string'))) {
    throw new TypeError('headers must be an object or a list of [name, value] pairs');
  }
  if (body !== undefined && typeof body !== 'string') throw new TypeError('fetch in the sandbox takes a text body only');
  if (typeof redirect !== 'string' || !REDIRECT_MODES.has(redirect)) throw new TypeError(`redirect must be 'follow', 'manual' or 'error'`);
  return { url, method, headers: headers as [string, string][], body, redirect: redirect as EgressRequest['redirect'] };
}
