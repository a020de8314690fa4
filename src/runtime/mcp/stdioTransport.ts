import { spawn, type ChildProcess } from 'node:child_process';
import type * as childProcess from 'node:child_process';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { functionSource } from '../functionSource';

/**
 * The stdio transport of the MCP servers Keel starts. Each server runs under a small watchdog
 * process (a second `node`) that puts it in a process group of its own, passes it this process's
 * pipes untouched, and ends the whole group as soon as this process is gone, however it died
 * (SIGKILL included): no server outlives the runtime process that started it. While no request is
 * waiting for an answer, the server does not keep this process alive, so a command that has
 * finished its work exits without closing servers first.
 */

/** How often the watchdog checks that the process that started it is still there. */
const PARENT_CHECK_MS = 200;
/** How long a server has to exit after its stdin closes or it is asked to, before it is killed. */
const GRACE_MS = 2000;
/** How much of a server's stderr is kept, for the sentence said when it fails. */
const STDERR_TAIL = 4000;

/**
 * The watchdog, run as `node -e`: starts the server in its own process group with the watchdog's
 * stdio, exits as the server exits, forwards SIGTERM and SIGINT, and ends the group when its parent
 * changes (the runtime process died and the watchdog was adopted). Self-contained: it runs as its
 * own source text, with the child_process module passed in.
 */
function watchdog(children: typeof childProcess, parent: number, command: string, args: readonly string[], graceMs: number, checkMs: number): void {
  const group = process.platform !== 'win32';
  const server = children.spawn(command, [...args], { stdio: 'inherit', detached: group });
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      if (group && server.pid !== undefined) process.kill(-server.pid, signal);
      else server.kill(signal);
    } catch {
      // The group is gone already.
    }
  };
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    signalGroup('SIGTERM');
    setTimeout(() => signalGroup('SIGKILL'), graceMs).unref();
  };
  server.on('error', (error: Error) => {
    process.stderr.write(`cannot start ${command}: ${error.message}\n`);
    process.exit(127);
  });
  server.on('exit', (code: number | null) => {
    // Whatever the server left running in its group goes with it.
    signalGroup('SIGKILL');
    process.exit(code ?? 1);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, checkMs);
}

export interface StdioServerLaunch {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

export class WatchedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private child: ChildProcess | undefined;
  private readonly buffer = new ReadBuffer();
  private readonly waiting = new Set<string | number>();
  private stderr = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(private readonly launch: StdioServerLaunch) {}

  /** The pid of the watchdog, whose process group holds the server. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last few KB the server wrote to stderr. */
  get stderrTail(): string {
    return this.stderr;
  }

  /** How the server exited, once it has. */
  get exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit;
  }

  start(): Promise<void> {
    if (this.child) throw new Error('This transport has started already.');
    const { command, args, env, cwd } = this.launch;
    const source = `(${functionSource(watchdog)})(require('node:child_process'), ...JSON.parse(process.argv[1]))`;
    const settings = JSON.stringify([process.pid, command, args, GRACE_MS, PARENT_CHECK_MS]);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', source, settings], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env }, cwd, windowsHide: true });
      this.child = child;
      child.once('spawn', () => {
        this.idle();
        resolve();
      });
      child.once('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.child = undefined;
        this.onclose?.();
      });
      child.stdin?.on('error', (error) => this.onerror?.(error));
      child.stdout?.on('data', (chunk: Buffer) => {
        this.buffer.append(chunk);
        this.read();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
      });
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin) return Promise.reject(new Error('The server is not running.'));
    if ('method' in message && 'id' in message) {
      this.waiting.add(message.id);
      this.busy();
    }
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /** Closes the server's stdin, then asks the watchdog to end it; resolves when it has exited. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // A close is awaited: the server keeps this process alive until it has exited.
    this.busy();
    child.stdin?.end();
    const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
    await Promise.race([closed, wait(GRACE_MS)]);
    if (this.child) child.kill('SIGTERM');
    await Promise.race([closed, wait(2 * GRACE_MS)]);
    this.buffer.clear();
  }

  /** Ends the server at once (this process is exiting: nothing asynchronous runs any more). */
  killNow(): void {
    this.child?.kill('SIGTERM');
  }

  private read(): void {
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.buffer.readMessage();
      } catch (error) {
        this.onerror?.(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (message === null) return;
      if (('result' in message || 'error' in message) && 'id' in message && message.id !== undefined && message.id !== null) {
        this.waiting.delete(message.id);
        if (this.waiting.size === 0) this.idle();
      }
      this.onmessage?.(message);
    }
  }

  /** A request waits for its answer: the server's pipes keep this process alive. */
  private busy(): void {
    this.eachHandle((handle) => handle.ref());
  }

  private idle(): void {
    this.eachHandle((handle) => handle.unref());
  }

  private eachHandle(apply: (handle: { ref(): unknown; unref(): unknown }) => void): void {
    const child = this.child;
    if (!child) return;
    apply(child);
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      const handle = stream as unknown as { ref?: () => unknown; unref?: () => unknown } | null;
      if (handle?.ref && handle.unref) apply({ ref: () => handle.ref?.(), unref: () => handle.unref?.() });
    }
  }
}
