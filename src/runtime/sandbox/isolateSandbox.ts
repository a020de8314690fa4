import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describeError } from '../errors';
import { systemResolve, type Resolve } from './egress';
import { egressFetch, type EgressRequest } from './egressFetch';
import { settleOutcome } from './callOutcome';
import { EgressDeniedError, ToolSandboxError } from './sandboxError';
import { toolScript, type ToolScript } from './toolScript';
import type { SandboxCall, ToolSandbox } from './toolSandbox';
import type { CallOutcome, ToParent, ToWorker } from './workerProtocol';
import { AnnotationBounds } from './annotations';

export interface IsolateSandboxOptions {
  /**
   * Isolates kept warm per memory limit in each worker, taking turns so that one always has a
   * fresh context ready. 0 starts a new isolate for every call and disposes it after (cold). Default 2.
   */
  readonly warmIsolates?: number;
  /** The most calls running at once, each in a worker process of its own; more wait their turn. Default 8. */
  readonly maxWorkers?: number;
  /** Idle workers kept for the next calls; more are ended when their call is done. Default 1. */
  readonly warmWorkers?: number;
  /** How `ctx.fetch` resolves host names before checking the addresses; tests replace it. */
  readonly resolve?: Resolve;
}

/** The worker's entry, next to this module both in dist/ (bundled) and out/ (compiled). */
const WORKER_ENTRY = join(__dirname, 'isolateWorker.js');
const MAX_FETCHES_PER_CALL = 100;
/** Requests of one call in flight at once; the rest wait, so one call holds at most this many responses. */
const MAX_FETCHES_AT_ONCE = 4;
const MAX_RESPONSE_BYTES = 10 * 2 ** 20;
/** How long past its time limit a worker may take to answer before it is ended. */
const WORKER_GRACE_MS = 2_000;
const REDIRECT_MODES = new Set(['follow', 'manual', 'error']);

/**
 * Runs sandboxed tools of the isolate tier in isolated-vm isolates that live in a pool of worker
 * processes (children of this process, over Node's IPC channel), one call per worker at a time.
 * Whatever a tool does to its isolate, even what makes isolated-vm end the process, ends at most
 * its worker: the call fails with a ToolSandboxError (never retried) and this process and its
 * other calls go on. This process keeps what the tool reaches through `ctx`: the egress-checked
 * `fetch`, `log`, the call's identity and cancellation.
 */
export class IsolateSandbox implements ToolSandbox {
  private readonly warmIsolates: number;
  private readonly maxWorkers: number;
  private readonly warmWorkers: number;
  private readonly resolve: Resolve;
  private readonly idle: IsolateWorker[] = [];
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private closed = false;

  constructor(options: IsolateSandboxOptions = {}) {
    this.warmIsolates = options.warmIsolates ?? 2;
    this.maxWorkers = options.maxWorkers ?? 8;
    this.warmWorkers = options.warmWorkers ?? 1;
    this.resolve = options.resolve ?? systemResolve;
  }

  async run(call: SandboxCall): Promise<unknown> {
    const script = await toolScript(call.tool);
    call.ctx.signal.throwIfAborted();
    if (this.closed) throw new ToolSandboxError('the sandbox has been closed', 'unavailable');
    await this.turn(call.ctx.signal);
    const worker = this.takeIdle() ?? new IsolateWorker(this.warmIsolates);
    try {
      return await worker.call(script, call, this.resolve);
    } finally {
      this.running -= 1;
      void worker.free.then(() => this.recycle(worker));
      this.waiting.shift()?.();
    }
  }

  /** Starts the warm workers, with isolates of this memory limit, ahead of the first call. */
  prewarm(memoryMb: number): void {
    while (this.idle.length < this.warmWorkers) this.idle.push(new IsolateWorker(this.warmIsolates));
    for (const worker of this.idle) void worker.prewarm(memoryMb);
  }

  /** Settles once every idle worker has its isolates of this memory limit ready, each with a fresh context. */
  async whenPrepared(memoryMb: number): Promise<void> {
    await Promise.all(this.idle.map((worker) => worker.prewarm(memoryMb)));
  }

  close(): Promise<void> {
    this.closed = true;
    for (const worker of this.idle.splice(0)) worker.end();
    return Promise.resolve();
  }

  private async turn(signal: AbortSignal): Promise<void> {
    while (this.running >= this.maxWorkers) {
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

  /** The idle worker that waited least (its isolates are warmest), skipping any that ended while idle. */
  private takeIdle(): IsolateWorker | undefined {
    for (let worker = this.idle.pop(); worker; worker = this.idle.pop()) if (worker.alive) return worker;
    return undefined;
  }

  private recycle(worker: IsolateWorker): void {
    if (this.closed || !worker.alive || this.idle.length >= this.warmWorkers) {
      worker.end();
      return;
    }
    this.idle.push(worker);
  }
}

/** One worker process and the call it runs, seen from this process. */
class IsolateWorker {
  private readonly child: ChildProcess;
  private stderr = '';
  private exit: string | undefined;
  private nextId = 0;
  private nextToken = 0;
  private current: WorkerCall | undefined;
  private readonly prepared = new Map<number, () => void>();
  /** Settles when the worker has no call in flight: its last one answered, or it ended. */
  free: Promise<void> = Promise.resolve();

  constructor(warmIsolates: number) {
    this.child = fork(WORKER_ENTRY, [String(warmIsolates)], {
      execArgv: ['--no-node-snapshot'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // The worker needs nothing from the environment, and an escape from an isolate should find nothing there.
      env: process.env['SystemRoot'] === undefined ? {} : { SystemRoot: process.env['SystemRoot'] },
    });
    const stderr = this.child.stderr as (Readable & { unref?: () => void }) | null;
    stderr?.setEncoding('utf8');
    stderr?.on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4_096)));
    // Only a worker with a call keeps this process alive (see sleep and wake), never its stderr.
    stderr?.unref?.();
    this.child.on('message', (message: ToParent) => this.receive(message));
    this.child.on('error', (error) => this.ended(describeError(error)));
    this.child.on('close', (code, signal) => this.ended(signal ? `it was ended by ${signal}` : `it exited with code ${String(code)}`));
    this.sleep();
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  call(script: ToolScript, call: SandboxCall, resolve: Resolve): Promise<unknown> {
    if (this.exit !== undefined) return Promise.reject(crashError(this.exit));
    const id = ++this.nextId;
    const running = new WorkerCall(id, call, resolve, (message) => this.send(message), () => this.kill());
    this.current = running;
    let freed: () => void = () => undefined;
    this.free = new Promise((resolveFree) => (freed = resolveFree));
    void running.finished.then(() => {
      if (this.current === running) this.current = undefined;
      if (this.prepared.size === 0) this.sleep();
      freed();
    });
    this.wake();
    const { tool, grant, args, ctx } = call;
    this.send({
      type: 'call',
      id,
      tool: { name: tool.name, code: script.code, pure: script.pure },
      limits: { memoryMb: grant.memoryMb, cpuMs: grant.cpuMs, timeoutMs: grant.timeoutMs, wasm: grant.wasm, maxOutputBytes: tool.maxOutputBytes },
      args,
      meta: { runId: ctx.runId, stepId: ctx.stepId, callIndex: ctx.callIndex, idempotencyKey: ctx.idempotencyKey, traceparent: ctx.traceparent },
    });
    return running.result;
  }

  /** Asks the worker to have isolates of this memory limit warm, each with a fresh context; settles when they are. */
  prewarm(memoryMb: number): Promise<void> {
    if (this.exit !== undefined) return Promise.resolve();
    const token = ++this.nextToken;
    this.wake();
    return new Promise((resolve) => {
      this.prepared.set(token, () => {
        this.prepared.delete(token);
        if (!this.current && this.prepared.size === 0) this.sleep();
        resolve();
      });
      this.send({ type: 'prewarm', memoryMb, token });
    });
  }

  /** Ends an idle worker: it exits when its channel closes. */
  end(): void {
    if (this.exit === undefined && this.child.connected) this.child.disconnect();
  }

  private kill(): void {
    if (this.exit === undefined) this.child.kill('SIGKILL');
  }

  private send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  private receive(message: ToParent): void {
    switch (message.type) {
      case 'prepared':
        this.prepared.get(message.token)?.();
        return;
      case 'unavailable':
        this.exit = `isolated-vm could not be loaded on Node ${process.version} (${message.message})`;
        this.current?.fail(new ToolSandboxError(`it must run in the sandbox, but ${this.exit}`, 'unavailable'));
        return;
      default:
        if (this.current?.id === message.id) this.current.receive(message);
    }
  }

  private ended(reason: string): void {
    if (this.exit === undefined) {
      const catastrophe = /isolated-vm reported a catastrophic error \(([^)\n]*)\)/.exec(this.stderr)?.[0];
      this.exit = catastrophe ?? reason;
    }
    this.current?.fail(crashError(this.exit));
    for (const done of this.prepared.values()) done();
    this.prepared.clear();
  }

  /** An idle worker does not keep this process alive. */
  private sleep(): void {
    this.child.unref();
    this.child.channel?.unref();
  }

  private wake(): void {
    this.child.ref();
    this.child.channel?.ref();
  }
}

function crashError(reason: string): ToolSandboxError {
  return new ToolSandboxError(`the process its sandbox ran in ended under it (${reason}); only this call was lost`, 'crash');
}

/** One call in a worker, seen from this process: its result, its requests, its limits as a last resort. */
class WorkerCall {
  /** The tool's result or error, as the caller sees it; may settle before the worker answers (a cancel, a denial). */
  readonly result: Promise<unknown>;
  /** Settles when the worker has answered, or ended. */
  readonly finished: Promise<void>;
  private settle!: { resolve(value: unknown): void; reject(error: unknown): void };
  private finish!: () => void;
  private settled = false;
  private answered = false;
  private readonly annotations = new AnnotationBounds();
  private readonly watchdog: NodeJS.Timeout;
  private readonly network = new AbortController();
  private fetches = 0;
  private active = 0;
  private readonly queued: (() => void)[] = [];
  /** Network errors given to the tool, by message, so that one the tool rethrows keeps its code (for retries). */
  private readonly networkErrors = new Map<string, Error>();
  private readonly onAbort: () => void;

  constructor(
    readonly id: number,
    private readonly call: SandboxCall,
    private readonly resolve: Resolve,
    private readonly send: (message: ToWorker) => void,
    private readonly kill: () => void,
  ) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.finished = new Promise((resolve) => (this.finish = resolve));
    const { grant, ctx } = call;
    // The worker keeps the time limit; this is for a worker that no longer answers.
    this.watchdog = setTimeout(() => {
      this.fail(new ToolSandboxError(`it did not finish within its ${grant.timeoutMs} ms time limit, so the sandbox stopped it`, 'timeout'));
      this.kill();
    }, grant.timeoutMs + WORKER_GRACE_MS);
    this.onAbort = () => this.stop(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(describeError(ctx.signal.reason)));
    ctx.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  receive(message: Exclude<ToParent, { type: 'prepared' | 'unavailable' }>): void {
    switch (message.type) {
      case 'log':
        if (!this.settled) this.call.ctx.log(message.message);
        return;
      case 'annotate':
        if (!this.settled) this.call.ctx.annotate(this.annotations.keep(parsed(message.attributes)));
        return;
      case 'fetch':
        this.fetch(message.fetchId, message.request);
        return;
      case 'done':
        this.answered = true;
        if (this.settled) this.end();
        else this.outcome(message.outcome);
        return;
    }
  }

  /** The worker ended, or could not run the call. */
  fail(error: Error): void {
    this.answered = true;
    this.reject(error);
  }

  /** Fails the call now and has the worker dispose of its isolate; the worker is reused once it answers. */
  private stop(error: Error): void {
    if (this.settled) return;
    this.reject(error);
    this.send({ type: 'stop', id: this.id });
    clearTimeout(this.watchdog);
    // A worker that does not answer a stop in time is ended.
    setTimeout(() => {
      if (!this.answered) this.kill();
    }, WORKER_GRACE_MS).unref();
  }

  private outcome(outcome: CallOutcome): void {
    let value: unknown;
    try {
      value = settleOutcome(outcome, this.call.tool, this.networkErrors);
    } catch (error) {
      this.reject(error);
      return;
    }
    this.accept(value);
  }

  private accept(value: unknown): void {
    this.settle.resolve(value);
    this.settled = true;
    this.end();
  }

  private reject(error: unknown): void {
    if (!this.settled) this.settle.reject(error);
    this.settled = true;
    if (this.answered) this.end();
  }

  private end(): void {
    clearTimeout(this.watchdog);
    this.call.ctx.signal.removeEventListener('abort', this.onAbort);
    // Requests the tool left running end with the call (aborting costs a DOMException, so only then).
    if (this.fetches > 0) this.network.abort();
    this.finish();
  }

  private fetch(fetchId: number, request: unknown): void {
    if (this.settled) return;
    let parsed: EgressRequest;
    try {
      parsed = parseRequest(request);
    } catch (error) {
      this.deliver(fetchId, false, { name: 'TypeError', message: describeError(error) });
      return;
    }
    this.fetches += 1;
    if (this.fetches > MAX_FETCHES_PER_CALL) {
      this.deliver(fetchId, false, { name: 'Error', message: `a sandboxed tool call may make at most ${MAX_FETCHES_PER_CALL} requests` });
      return;
    }
    const start = () => {
      this.active += 1;
      void this.request(fetchId, parsed).finally(() => {
        this.active -= 1;
        this.queued.shift()?.();
      });
    };
    if (this.active < MAX_FETCHES_AT_ONCE) start();
    else this.queued.push(start);
  }

  private async request(fetchId: number, parsed: EgressRequest): Promise<void> {
    if (this.settled) return;
    const { grant } = this.call;
    try {
      const response = await egressFetch(parsed, {
        policy: grant.egress,
        resolve: this.resolve,
        signal: this.network.signal,
        maxResponseBytes: Math.min(MAX_RESPONSE_BYTES, (grant.memoryMb * 2 ** 20) / 4),
      });
      this.deliver(fetchId, true, response);
    } catch (error) {
      if (error instanceof EgressDeniedError) {
        this.stop(error);
        return;
      }
      const message = `fetch ${parsed.url} failed: ${describeError(error)}`;
      const hostError = new Error(message, { cause: error });
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string') Object.assign(hostError, { code });
      this.networkErrors.set(message, hostError);
      this.deliver(fetchId, false, { name: error instanceof TypeError ? 'TypeError' : 'Error', message });
    }
  }

  private deliver(fetchId: number, ok: boolean, payload: unknown): void {
    if (!this.settled) this.send({ type: 'fetched', id: this.id, fetchId, ok, payload });
  }
}

/** Checks a request that came out of the sandbox: it is data from untrusted code. */
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

/** JSON text from the worker, or nothing when it is not JSON. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
