import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

/** The repository root; compiled tests live in out/test/... */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** How long a child process may take before the test gives up on it and kills it (generous: the fault stage loads both cores). */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Finished extends Exit {
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  readonly cwd?: string;
  /** The whole environment of the child; defaults to `testEnv()`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The node binary; defaults to the one running the tests. */
  readonly node?: string;
}

export interface RunOptions extends SpawnOptions {
  readonly timeoutMs?: number;
}

/** A running node process whose output is collected as it comes. */
export interface NodeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Settles when the process has exited and its streams are closed. */
  readonly exited: Promise<Exit>;
  /** Resolves once stderr contains `text`; rejects if the process exits or `timeoutMs` passes first. */
  stderrIncludes(text: string, timeoutMs?: number): Promise<void>;
}

/**
 * The tests' own environment without anything that would change what Keel prints or where it
 * writes: colour switches, Keel's settings and OpenAI endpoints. `extra` is added on top.
 */
export function testEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(NO_COLOR|FORCE_COLOR|KEEL_.*|OPENAI_.*)$/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export function spawnNode(script: string, args: readonly string[], options: SpawnOptions = {}): NodeProcess {
  const child = spawn(options.node ?? process.execPath, [script, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? testEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // Writing to a process that has exited fails with EPIPE; the test sees the exit instead.
  child.stdin.on('error', () => undefined);
  let stdout = '';
  let stderr = '';
  const stderrWatchers = new Set<() => void>();
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    for (const watcher of stderrWatchers) watcher();
  });
  const exited = new Promise<Exit>((resolveExit, rejectExit) => {
    child.once('error', rejectExit);
    child.once('close', (code, signal) => resolveExit({ code, signal }));
  });
  let hasExited = false;
  void exited.then(
    () => {
      hasExited = true;
      for (const watcher of stderrWatchers) watcher();
    },
    () => undefined,
  );

  const stderrIncludes = (text: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> =>
    new Promise((resolveWait, rejectWait) => {
      const timer = setTimeout(() => {
        stderrWatchers.delete(check);
        rejectWait(new Error(`stderr did not show ${JSON.stringify(text)} within ${timeoutMs} ms; stderr:\n${stderr}`));
      }, timeoutMs);
      function check(): void {
        if (stderr.includes(text)) {
          finish();
          resolveWait();
        } else if (hasExited) {
          finish();
          rejectWait(new Error(`the process exited before stderr showed ${JSON.stringify(text)}; stderr:\n${stderr}`));
        }
      }
      function finish(): void {
        clearTimeout(timer);
        stderrWatchers.delete(check);
      }
      stderrWatchers.add(check);
      check();
    });

  return { child, stdout: () => stdout, stderr: () => stderr, exited, stderrIncludes };
}

/** Waits for `promise`, failing with `what` if it takes longer than `timeoutMs`. */
export function within<T>(promise: Promise<T>, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs a node script to completion and returns its exit and output; kills it after `timeoutMs`. */
export async function runNode(script: string, args: readonly string[], options: RunOptions = {}): Promise<Finished> {
  const proc = spawnNode(script, args, options);
  proc.child.stdin.end();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const exit = await within(proc.exited, `node ${script} ${args.join(' ')} exiting`, timeoutMs);
    return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() };
  } catch (error) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
  }
}
