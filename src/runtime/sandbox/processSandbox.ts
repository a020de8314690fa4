import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, parse, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { serialize } from 'node:v8';
import { describeError } from '../errors';
import { settleOutcome } from './callOutcome';
import { systemResolve, type Resolve } from './egress';
import { startEgressProxy, type EgressProxy } from './egressProxy';
import { frame, FrameReader } from './frames';
import { EGRESS_PORT, bubblewrapArgs, osSandbox, type OsSandbox } from './osSandbox';
import { MAX_ERROR_CHARS, ToolSandboxError, type EgressDeniedError } from './sandboxError';
import type { SandboxCall, ToolSandbox } from './toolSandbox';
import type { FromToolProcess, ToolProcessCall } from './workerProtocol';
import { AnnotationBounds } from './annotations';

export interface ProcessSandboxOptions {
  /** `process`: a Node process of its own; `os`: that process inside the OS sandbox. */
  readonly tier: 'process' | 'os';
  /** How the egress proxy resolves host names before checking the addresses; tests replace it. */
  readonly resolve?: Resolve;
}

/** The tool process's entry, next to this module both in dist/ (bundled) and out/ (compiled). */
const ENTRY = join(__dirname, 'toolProcess.js');
/** What a tool's Node process may use beyond its heap limit (Node itself, buffers) before it is stopped. */
export const PROCESS_OVERHEAD_MB = 128;
/** How often the runtime measures a tool process's CPU time and memory (Linux). */
const MEASURE_MS = 20;
/** How long starting Node and loading the tool's module may take. */
const STARTUP_MS = 30_000;
const MAX_LOG_CHARS = 10_000;
const MAX_LOGS_PER_CALL = 1_000;
/** Span attributes a tool's process may add to its call's span, and the characters of each. */
/** Linux's clock ticks per second, in which /proc reports CPU time. */
const CLOCK_TICKS = 100;

/**
 * Runs tools of the process and OS tiers: each call in a Node process of its own, started for it
 * and ended after it, which loads the tool's module and runs it with Node and npm packages at hand.
 * The runtime process keeps the limits from outside: the wall-clock limit, and on Linux the CPU
 * time and resident memory of the process and everything it started (measured every 20 ms), the
 * heap limit through Node's own flag, the size of what comes back (a frame over the output limit
 * is refused as its length arrives). In the OS tier the process runs under bubblewrap with a file
 * system allow-list and reaches the network only through an egress proxy in this process.
 */
export class ProcessSandbox implements ToolSandbox {
  private readonly running = new Set<ProcessCall>();

  constructor(private readonly options: ProcessSandboxOptions) {}

  async run(call: SandboxCall): Promise<unknown> {
    const { tool, ctx } = call;
    const module = tool.module;
    if (module === undefined) {
      throw new ToolSandboxError(`it must run in a process of its own, which loads it from the file that defines it, and Keel cannot tell which file that is`, 'code');
    }
    ctx.signal.throwIfAborted();
    const os = this.options.tier === 'os' ? await osSandbox() : undefined;
    ctx.signal.throwIfAborted();
    const running = new ProcessCall(call, module, os, this.options.resolve ?? systemResolve);
    this.running.add(running);
    try {
      return await running.result();
    } finally {
      this.running.delete(running);
    }
  }

  close(): Promise<void> {
    for (const call of this.running) call.kill();
    return Promise.resolve();
  }
}

class ProcessCall {
  private child: ChildProcess | undefined;
  private failure: Error | undefined;
  private fail: (error: Error) => void = () => undefined;
  private stderr = '';
  private logs = 0;
  private readonly annotations = new AnnotationBounds();
  /** The CPU time its process had used when the tool started; undefined until then. */
  private cpuStart: number | undefined;

  constructor(
    private readonly call: SandboxCall,
    private readonly module: string,
    private readonly os: OsSandbox | undefined,
    private readonly resolve: Resolve,
  ) {}

  async result(): Promise<unknown> {
    const { tool, grant, args, ctx } = this.call;
    const stopped = new Promise<never>((_resolve, reject) => (this.fail = reject));
    stopped.catch(() => undefined);
    let proxy: EgressProxy | undefined;
    let folder: string | undefined;
    const timers: NodeJS.Timeout[] = [];
    const onAbort = () => this.stop(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(describeError(ctx.signal.reason)));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      let egressSocket: string | undefined;
      if (this.os) {
        folder = mkdtempSync(join(tmpdir(), 'keel-egress-'));
        egressSocket = join(folder, 'egress.sock');
        proxy = await startEgressProxy(grant.egress, this.resolve, { path: egressSocket }, (error: EgressDeniedError) => this.stop(error));
      }
      const child = this.spawn(egressSocket);
      this.child = child;
      // Starting Node and loading the tool's module is not the tool's time: its limits count from when it starts.
      const startup = setTimeout(() => this.stop(new ToolSandboxError(`its process did not start within ${STARTUP_MS / 1000} s`, 'unavailable')), STARTUP_MS);
      timers.push(startup);
      const started = () => {
        timers.push(
          setTimeout(() => this.stop(new ToolSandboxError(`it did not finish within its ${grant.timeoutMs} ms time limit, so the sandbox stopped it`, 'timeout')), grant.timeoutMs),
        );
      };
      if (process.platform === 'linux' && child.pid !== undefined) timers.push(this.measure(child.pid));
      const answer = this.answer(child, () => {
        clearTimeout(startup);
        this.cpuStart = this.child?.pid === undefined || process.platform !== 'linux' ? 0 : treeUsage(this.child.pid).cpuMs;
        started();
      });
      const message: ToolProcessCall = {
        module: this.module,
        tool: tool.name,
        args,
        meta: { runId: ctx.runId, stepId: ctx.stepId, callIndex: ctx.callIndex, idempotencyKey: ctx.idempotencyKey, traceparent: ctx.traceparent },
        maxOutputBytes: tool.maxOutputBytes,
        egress: this.os !== undefined,
      };
      (child.stdio[3] as Duplex | null)?.write(frame(serialize(message)));
      return settleOutcome(await Promise.race([answer, stopped]), tool);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      this.kill();
      await proxy?.close();
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  }

  kill(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      // The process tier's process leads a group of its own: end whatever it started too. In the
      // OS tier, bubblewrap's end ends everything in its namespaces.
      process.kill(this.os ? pid : -pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  private stop(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.fail(error);
    this.kill();
  }

  private spawn(egressSocket: string | undefined): ChildProcess {
    const { grant } = this.call;
    const node = [`--max-old-space-size=${grant.memoryMb}`, ENTRY];
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: this.os ? '/tmp' : tmpdir() };
    for (const name of grant.env) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe', 'pipe'];
    if (!this.os || egressSocket === undefined) {
      return spawn(process.execPath, node, { stdio, env, cwd: dirname(this.module), detached: true });
    }
    const proxy = `http://127.0.0.1:${EGRESS_PORT}`;
    Object.assign(env, { NODE_USE_ENV_PROXY: '1', HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy, NO_PROXY: '', no_proxy: '' });
    const home = dirname(this.module);
    const near = (path: string) => (isAbsolute(path) ? path : resolvePath(home, path));
    const missing = [...grant.files.read, ...grant.files.write].map(near).find((path) => !existsSync(path));
    if (missing !== undefined) throw new ToolSandboxError(`its sandbox.files names ${missing}, which does not exist`, 'unavailable');
    const toolRoot = packageRoot(this.module);
    const keelRoot = packageRoot(ENTRY);
    const read = [
      dirname(dirname(process.execPath)),
      keelRoot,
      ...nodeModulesAbove(keelRoot),
      toolRoot,
      ...nodeModulesAbove(toolRoot),
      ...grant.files.read.map(near),
    ];
    const args = bubblewrapArgs({ read, write: grant.files.write.map(near), egressSocket, cwd: toolRoot });
    return spawn(this.os.command, [...args, process.execPath, ...node], { stdio, env });
  }

  /** How the call ends, as the tool's process says; its logs on the way. */
  private answer(child: ChildProcess, onStarted: () => void): Promise<Parameters<typeof settleOutcome>[0]> {
    const { tool, grant } = this.call;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      let partial = '';
      stream?.on('data', (chunk: string) => {
        if (stream === child.stderr) this.stderr = (this.stderr + chunk).slice(-4_096);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        if (partial.length > MAX_LOG_CHARS) {
          lines.push(partial);
          partial = '';
        }
        for (const line of lines) this.log(line);
      });
    }
    return new Promise((resolve, reject) => {
      // A frame may carry the output in JSON (up to 6 characters a byte, for control characters) or a capped error.
      const reader = new FrameReader(
        tool.maxOutputBytes * 6 + MAX_ERROR_CHARS * 6 + 65_536,
        (payload) => {
          const message = JSON.parse(payload.toString('utf8')) as FromToolProcess;
          if (message.type === 'log') this.log(message.message);
          else if (message.type === 'annotate') this.annotate(message.attributes);
          else if (message.type === 'started') onStarted();
          else resolve(message.outcome);
        },
        (bytes) =>
          reject(
            new ToolSandboxError(`its process began an answer of ${bytes} bytes, far more than its output limit of ${tool.maxOutputBytes} bytes allows, so the sandbox stopped it`, 'output'),
          ),
      );
      child.stdio[3]?.on('data', (chunk: Buffer) => reader.push(chunk));
      child.stdio[3]?.on('error', () => undefined);
      child.on('error', (error) => reject(new ToolSandboxError(`its process could not be started (${describeError(error)})`, 'unavailable')));
      child.on('close', (code, signal) => {
        if (/Reached heap limit|JavaScript heap out of memory/.test(this.stderr)) {
          reject(new ToolSandboxError(`it used more than ${grant.memoryMb} MB of memory, so the sandbox stopped it`, 'memory'));
          return;
        }
        const last = this.stderr.trim().split('\n').pop()?.slice(0, 500);
        const how = signal ? `it was ended by ${signal}` : `it exited with code ${String(code)}`;
        reject(new ToolSandboxError(`the process it ran in ended before it answered (${how}${last ? `: ${last}` : ''}); only this call was lost`, 'crash'));
      });
    });
  }

  private log(line: string): void {
    if (this.failure || line === '') return;
    this.logs += 1;
    if (this.logs > MAX_LOGS_PER_CALL) {
      if (this.logs === MAX_LOGS_PER_CALL + 1) this.call.ctx.log(`(more than ${MAX_LOGS_PER_CALL} log lines; the rest are dropped)`);
      return;
    }
    this.call.ctx.log(line.length > MAX_LOG_CHARS ? `${line.slice(0, MAX_LOG_CHARS)}…` : line);
  }

  /** Passes on the span attributes the tool's process sent, within bounds: it is data from untrusted code. */
  private annotate(attributes: unknown): void {
    if (this.failure) return;
    this.call.ctx.annotate(this.annotations.keep(attributes));
  }

  /** Measures the CPU time and resident memory of the tool's process and its descendants, and stops it past its limits. */
  private measure(pid: number): NodeJS.Timeout {
    const { grant } = this.call;
    const timer = setInterval(() => {
      const { cpuMs, rssMb } = treeUsage(pid);
      if (this.cpuStart !== undefined && cpuMs - this.cpuStart > grant.cpuMs) this.stop(new ToolSandboxError(`it exceeded its ${grant.cpuMs} ms CPU limit, so the sandbox stopped it`, 'cpu'));
      else if (rssMb > grant.memoryMb + PROCESS_OVERHEAD_MB) {
        this.stop(new ToolSandboxError(`it used more than ${grant.memoryMb} MB of memory (its process ${Math.round(rssMb)} MB), so the sandbox stopped it`, 'memory'));
      }
    }, MEASURE_MS);
    timer.unref();
    return timer;
  }
}

/** CPU time and resident memory of a process and its descendants, from /proc. */
function treeUsage(root: number): { cpuMs: number; rssMb: number } {
  let ticks = 0;
  let pages = 0;
  const pending = [root];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name, which may itself hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      pages += Number(fields[21]);
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) if (child !== '') pending.push(Number(child));
      }
    } catch {
      // it ended meanwhile
    }
  }
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS, rssMb: (pages * 4096) / 2 ** 20 };
}

/** The nearest folder at or above `file`'s that holds a package.json, else `file`'s own folder. */
function packageRoot(file: string): string {
  const start = dirname(file);
  for (let folder = start; ; folder = dirname(folder)) {
    if (existsSync(join(folder, 'package.json'))) return folder;
    if (folder === parse(folder).root) return start;
  }
}

/** The node_modules folders above `folder`, where Node also looks for packages. */
function nodeModulesAbove(folder: string): string[] {
  const found: string[] = [];
  for (let parent = dirname(folder); parent !== folder; folder = parent, parent = dirname(parent)) {
    const candidate = join(parent, 'node_modules');
    if (existsSync(candidate)) found.push(candidate);
  }
  return found;
}
