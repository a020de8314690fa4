import ivm from 'isolated-vm';
import { describeError } from '../errors';
import { HARNESS_SCRIPT, type HarnessCall, type HarnessEntry, type HarnessOutcome } from './harness';
import { MAX_ERROR_CHARS, capErrorText, type SandboxStop } from './sandboxError';
import type { CallOutcome, ToWorker } from './workerProtocol';

/** The longest log line a tool may write; longer ones are cut inside the isolate. */
const MAX_LOG_CHARS = 10_000;
const MAX_LOGS_PER_CALL = 1_000;
/** The most characters of URL, headers and body one `ctx.fetch` may send out of the isolate. */
const MAX_REQUEST_CHARS = 10 * 2 ** 20;
const MAX_COMPILED_TOOLS = 100;
/** How often the worker measures itself while a tool granted WebAssembly runs (its memory is outside the heap limit). */
const WASM_MEMORY_POLL_MS = 5;

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
  'WebAssembly',
]);

export type WorkerCall = Extract<ToWorker, { type: 'call' }>;

/** What a call reaches outside the isolate: the runtime process, through the worker's IPC channel. */
export interface CallHost {
  log(message: string): void;
  /** The tool's `ctx.annotate`, as JSON text. */
  annotate(attributes: string): void;
  fetch(fetchId: number, request: unknown): void;
}

/** A call running in an isolate. */
export interface EngineCall {
  readonly outcome: Promise<CallOutcome>;
  /** Settles a `ctx.fetch` the tool is waiting for. */
  deliver(fetchId: number, ok: boolean, payload: unknown): void;
  /** Stops the call now; its isolate is disposed. */
  stop(): void;
}

interface PreparedContext {
  readonly context: ivm.Context;
  /** The harness's entry function in that context. */
  readonly entry: ivm.Reference<HarnessEntry>;
  /** The run function of the tool this isolate ran last, evaluated ahead in case it runs next. */
  readonly tool?: { readonly code: string; readonly run: ivm.Reference<unknown> };
}

/**
 * Runs sandboxed tools in isolated-vm inside an isolate worker process: each call in a V8 isolate
 * of its own while it runs, with a heap limit, a CPU limit, a wall-clock limit, no Node APIs and
 * nothing from the host but what the harness passes in (copied arguments, `log`, `fetch`).
 *
 * Isolates are kept warm; contexts never are. Every call gets a context nobody has used, so one
 * call never sees another's globals or polluted built-ins. Creating a context costs about 0.2 ms,
 * so each memory limit has `warmIsolates` isolates that take turns: while one runs a call, the
 * one that ran the last call prepares its next context, and a call that comes right after the
 * last one finds a context ready. An isolate whose call was stopped is disposed, never reused.
 */
export class IsolateEngine {
  private readonly idle = new Map<number, WarmIsolate[]>();

  /** `warmIsolates` per memory limit; 0 starts a new isolate for every call and disposes it after (cold). */
  constructor(private readonly warmIsolates: number) {}

  run(call: WorkerCall, host: CallHost): EngineCall {
    const list = this.idleList(call.limits.memoryMb);
    // One whose next context is ready first, else the longest idle.
    const ready = list.findIndex((warm) => warm.isReady);
    let warm: WarmIsolate;
    try {
      warm = (ready >= 0 ? list.splice(ready, 1)[0] : list.shift()) ?? new WarmIsolate(call.limits.memoryMb);
    } catch (error) {
      return refused('unavailable', `the sandbox could not start an isolate for it (${describeError(error)})`);
    }
    const running = new IsolatedCall(warm, call, host);
    void running.outcome.then(() => this.recycle(warm));
    return running;
  }

  /** Starts the warm isolates of this memory limit ahead of their first call. */
  prewarm(memoryMb: number): void {
    const list = this.idleList(memoryMb);
    while (list.length < this.warmIsolates) {
      const warm = new WarmIsolate(memoryMb);
      warm.prepare();
      list.push(warm);
    }
  }

  /** Settles once every idle isolate has its next context ready. */
  async whenPrepared(): Promise<void> {
    await Promise.all([...this.idle.values()].flat().map((warm) => warm.ready()));
  }

  private recycle(warm: WarmIsolate): void {
    const list = this.idleList(warm.memoryMb);
    if (warm.poisoned || warm.isolate.isDisposed || list.length >= this.warmIsolates) {
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

function refused(stop: SandboxStop, message: string): EngineCall {
  return { outcome: Promise.resolve({ kind: 'stopped', stop, message }), deliver: () => undefined, stop: () => undefined };
}

/** One isolate, its compiled scripts, and the fresh context its next call will use. */
class WarmIsolate {
  readonly isolate: ivm.Isolate;
  /** Set when a call was stopped in it: it is disposed rather than reused. */
  poisoned = false;
  /** Whether the next call's context is ready. */
  isReady = false;
  private readonly harness: ivm.Script;
  private readonly scripts = new Map<string, ivm.Script>();
  private next: Promise<PreparedContext> | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  /** The tool that ran last, when evaluating its script has no effect but creating its function. */
  private last: string | undefined;

  constructor(readonly memoryMb: number) {
    this.isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      // isolated-vm calls this only when V8 has lost control of the isolate; its advice is to end the
      // process. This process is an isolate worker: the runtime process sees it die and fails the call.
      onCatastrophicError: (message) => {
        process.stderr.write(`isolated-vm reported a catastrophic error (${message})\n`);
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
    next.then(
      () => (this.isReady = this.next === next),
      () => undefined,
    );
    this.next = next;
  }

  /** Prepares the next context once the call that just ended has been answered. */
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
    this.isReady = false;
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
  runFunction(prepared: PreparedContext, tool: WorkerCall['tool'], cpuMs: number): ivm.Reference<unknown> {
    this.last = tool.pure ? tool.code : undefined;
    if (prepared.tool?.code === tool.code) return prepared.tool.run;
    prepared.tool?.run.release();
    return this.script(tool).runSync(prepared.context, { reference: true, timeout: cpuMs });
  }

  /** The tool's script compiled in this isolate (once; it can run in any of its contexts). */
  private script(tool: WorkerCall['tool']): ivm.Script {
    let script = this.scripts.get(tool.code);
    if (!script) {
      if (this.scripts.size >= MAX_COMPILED_TOOLS) {
        const [oldest] = this.scripts.keys();
        if (oldest !== undefined) this.scripts.delete(oldest);
      }
      script = this.isolate.compileScriptSync(tool.code, { filename: `${tool.name}.sandboxed.js` });
      this.scripts.set(tool.code, script);
    }
    return script;
  }

  dispose(): void {
    this.unschedule();
    this.isReady = false;
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
class IsolatedCall implements EngineCall {
  readonly outcome: Promise<CallOutcome>;
  private done = false;
  private stopped: CallOutcome | undefined;
  private settleStop: (outcome: CallOutcome) => void = () => undefined;
  private prepared: PreparedContext | undefined;
  private readonly cpuStart: bigint;
  private logs = 0;

  constructor(
    private readonly warm: WarmIsolate,
    private readonly call: WorkerCall,
    private readonly host: CallHost,
  ) {
    this.cpuStart = warm.isolate.cpuTime;
    this.outcome = this.result();
  }

  stop(): void {
    this.kill({ kind: 'stopped', stop: 'unavailable', message: 'the runtime stopped it' });
  }

  private async result(): Promise<CallOutcome> {
    const { limits, meta } = this.call;
    const stop = new Promise<CallOutcome>((resolve) => (this.settleStop = resolve));
    const wall = setTimeout(
      () => this.kill({ kind: 'stopped', stop: 'timeout', message: `it did not finish within its ${limits.timeoutMs} ms time limit, so the sandbox stopped it` }),
      limits.timeoutMs,
    );
    const watch = limits.wasm ? this.watchMemory() : undefined;
    try {
      const prepared = await this.warm.take().catch((error: unknown) => {
        throw new Unavailable(`the sandbox could not prepare a context for it (${describeError(error)})`);
      });
      this.prepared = prepared;
      if (this.stopped) return this.stopped;
      const run = this.warm.runFunction(prepared, this.call.tool, limits.cpuMs);
      const args = copyInto(this.call.args, 'arguments');
      const call: HarnessCall = {
        ...meta,
        wasm: limits.wasm,
        maxOutputBytes: limits.maxOutputBytes,
        maxErrorChars: MAX_ERROR_CHARS,
        maxLogChars: MAX_LOG_CHARS,
        maxRequestChars: MAX_REQUEST_CHARS,
      };
      const log = new ivm.Callback((message: unknown) => this.log(message));
      const fetch = new ivm.Callback((id: unknown, request: unknown) => this.fetch(id, request));
      const annotate = new ivm.Callback((attributes: unknown) => {
        if (!this.done && typeof attributes === 'string') this.host.annotate(attributes);
      });
      const invocation = prepared.entry.apply(
        undefined,
        ['invoke', run.derefInto({ release: true }), args, new ivm.ExternalCopy(call).copyInto({ release: true }), log, fetch, annotate],
        { result: { promise: true, copy: true }, timeout: limits.cpuMs },
      ) as Promise<HarnessOutcome>;
      const outcome = await Promise.race([invocation, stop]);
      return this.stopped ?? this.explainOutcome(outcome);
    } catch (error) {
      return this.explain(error);
    } finally {
      this.done = true;
      clearTimeout(wall);
      if (watch) clearInterval(watch);
      if (this.prepared && !this.warm.isolate.isDisposed) {
        this.prepared.entry.release();
        this.prepared.context.release();
      }
    }
  }

  /** Stops the call now: the isolate is disposed, which ends whatever runs in it. */
  private kill(outcome: CallOutcome): void {
    if (this.done || this.stopped) return;
    this.stopped = outcome;
    this.warm.poisoned = true;
    this.warm.dispose();
    this.settleStop(outcome);
  }

  /** WebAssembly memory lives outside the isolate's heap limit, so a tool granted it is measured by the worker's growth. */
  private watchMemory(): NodeJS.Timeout {
    const { memoryMb } = this.call.limits;
    const baseline = process.memoryUsage.rss();
    return setInterval(() => {
      if (process.memoryUsage.rss() - baseline > memoryMb * 2 ** 20) this.kill(memoryStop(memoryMb));
    }, WASM_MEMORY_POLL_MS);
  }

  private cpuUsedMs(): number {
    return this.warm.isolate.isDisposed ? 0 : Number(this.warm.isolate.cpuTime - this.cpuStart) / 1e6;
  }

  private log(message: unknown): void {
    if (this.done || typeof message !== 'string') return;
    this.logs += 1;
    if (this.logs > MAX_LOGS_PER_CALL) {
      if (this.logs === MAX_LOGS_PER_CALL + 1) this.host.log(`(more than ${MAX_LOGS_PER_CALL} log lines; the rest are dropped)`);
      return;
    }
    this.host.log(message.length > MAX_LOG_CHARS ? `${message.slice(0, MAX_LOG_CHARS)}…` : message);
  }

  private fetch(id: unknown, request: unknown): void {
    if (this.done || typeof id !== 'number') return;
    this.host.fetch(id, request);
  }

  /** Settles a pending `ctx.fetch` inside the isolate, within what is left of the CPU budget. */
  deliver(fetchId: number, ok: boolean, payload: unknown): void {
    if (this.done || this.stopped || !this.prepared) return;
    const left = this.call.limits.cpuMs - this.cpuUsedMs();
    if (left <= 0) {
      this.kill(this.cpuStop());
      return;
    }
    try {
      this.prepared.entry
        .apply(undefined, ['deliver', fetchId, ok, copyInto(payload, 'response'), undefined, undefined, undefined], { timeout: Math.ceil(left) })
        .catch((error: unknown) => this.kill(this.explain(error)));
    } catch (error) {
      this.kill(this.explain(error));
    }
  }

  private cpuStop(): CallOutcome {
    this.warm.poisoned = true;
    return { kind: 'stopped', stop: 'cpu', message: `it exceeded its ${this.call.limits.cpuMs} ms CPU limit, so the sandbox stopped it` };
  }

  /** Turns an error of isolated-vm (the isolate ran out of something, or could not run the tool) into an outcome. */
  private explain(error: unknown): CallOutcome {
    if (this.stopped) return this.stopped;
    if (error instanceof Unavailable) return { kind: 'stopped', stop: 'unavailable', message: error.message };
    if (error instanceof Uncopyable) return { kind: 'stopped', stop: 'arguments', message: error.message };
    const message = describeError(error);
    if (this.warm.isolate.isDisposed || /disposed during execution due to memory limit/.test(message)) {
      this.warm.poisoned = true;
      return memoryStop(this.call.limits.memoryMb);
    }
    if (/^Script execution timed out/.test(message)) return this.cpuStop();
    const name = error instanceof Error ? error.name : undefined;
    const code = (error as { code?: unknown } | null)?.code;
    return explainThrown({ kind: 'threw', name, message: capErrorText(message), cut: 0, code: typeof code === 'string' ? code : undefined });
  }

  private explainOutcome(outcome: CallOutcome): CallOutcome {
    return outcome.kind === 'threw' ? explainThrown(outcome) : outcome;
  }
}

class Unavailable extends Error {}
class Uncopyable extends Error {}

function memoryStop(memoryMb: number): CallOutcome {
  return { kind: 'stopped', stop: 'memory', message: `it used more than ${memoryMb} MB of memory, so the sandbox stopped it` };
}

/** What a tool threw, or the sandbox's reason when the error says the tool reached for something the sandbox lacks. */
function explainThrown(thrown: Extract<HarnessOutcome, { kind: 'threw' }>): CallOutcome {
  const { name, message } = thrown;
  if (name === 'RangeError' && /^Maximum call stack size exceeded/.test(message)) {
    return { kind: 'stopped', stop: 'stack', message: 'it ran out of stack (its recursion went too deep) in the sandbox' };
  }
  const missing = name === 'ReferenceError' ? /^(\S+) is not defined$/.exec(message)?.[1] : undefined;
  if (missing !== undefined) return missingName(missing);
  if (name === 'Error' && message === 'Not supported') {
    return { kind: 'stopped', stop: 'code', message: 'it tried to import a module, but sandboxed code has no module loader: what run needs must be inside run' };
  }
  return thrown;
}

/** What esbuild turns `import()` and `require` into when it bundles an agent file. */
const BUNDLER_IMPORT_HELPERS = new Set(['__toESM', '__require', '__toCommonJS', '__commonJS', '__esm', '__reExport']);

function missingName(name: string): CallOutcome {
  const shown = `\`${name}\``;
  const code = (message: string): CallOutcome => ({ kind: 'stopped', stop: 'code', message });
  if (BUNDLER_IMPORT_HELPERS.has(name)) {
    return code(`it tried to import a module (its bundled code calls ${shown}), but sandboxed code has no module loader: what run needs must be inside run`);
  }
  if (NODE_GLOBALS.has(name)) return code(`it used ${shown}, which does not exist in the sandbox: sandboxed tools get no Node APIs`);
  if (name === 'WebAssembly') {
    return code("it used `WebAssembly`, which a sandboxed tool has only when granted `sandbox: { wasm: true }` (its memory then counts against memoryMb)");
  }
  if (WEB_GLOBALS.has(name)) return code(`it used ${shown}, which does not exist in the sandbox: it has JavaScript's built-ins only (use ctx.fetch for HTTP)`);
  const imported = /^import_\w+$|^\w+_\d+$/.test(name) ? ' (it looks like an import: sandboxed code cannot import modules)' : '';
  return code(
    `it used ${shown}, which is not defined in the sandbox${imported}: a sandboxed tool's run function must be self-contained, using only its arguments, ctx and JavaScript's built-ins`,
  );
}

/** A deep copy for the isolate (structured clone): never a reference to anything of the worker. */
function copyInto(value: unknown, what: 'arguments' | 'response'): ivm.Copy<unknown> {
  try {
    return new ivm.ExternalCopy(value).copyInto({ release: true });
  } catch (error) {
    throw new Uncopyable(`${what === 'arguments' ? 'its arguments' : 'a response'} cannot be copied into the sandbox (${describeError(error)})`, { cause: error });
  }
}
