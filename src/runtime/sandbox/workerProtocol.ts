import type { HarnessOutcome } from './harness';
import type { SandboxStop } from './sandboxError';

/**
 * The messages between the runtime process and an isolate worker (a child process that runs
 * isolated-vm isolates), over Node's IPC channel. Everything is plain data: the worker never
 * holds a reference to anything of the runtime process, and it runs one call at a time, so a
 * worker that dies takes only its own call with it.
 */

/** The limits of one call as the worker enforces them. */
export interface IsolateLimits {
  readonly memoryMb: number;
  readonly cpuMs: number;
  readonly timeoutMs: number;
  /** Whether the tool's context has WebAssembly; its memory then counts against memoryMb. */
  readonly wasm: boolean;
  /** The most bytes of output (as JSON, or the string itself) that may leave the sandbox. */
  readonly maxOutputBytes: number;
}

/** The call's identity, as `ctx` shows it inside the sandbox. */
export interface CallMeta {
  readonly runId: string;
  readonly stepId: number;
  readonly callIndex: number;
  readonly idempotencyKey: string;
  readonly traceparent: string;
}

export type ToParent =
  | { readonly type: 'log'; readonly id: number; readonly message: string }
  /** The tool's `ctx.annotate`: its span attributes as JSON text. */
  | { readonly type: 'annotate'; readonly id: number; readonly attributes: string }
  | { readonly type: 'fetch'; readonly id: number; readonly fetchId: number; readonly request: unknown }
  | { readonly type: 'done'; readonly id: number; readonly outcome: CallOutcome }
  /** Answers `prewarm` once the worker's idle isolates have their next contexts ready. */
  | { readonly type: 'prepared'; readonly token: number }
  /** isolated-vm could not be loaded (no prebuilt addon for this Node, say); the worker ends. */
  | { readonly type: 'unavailable'; readonly message: string };

export type ToWorker =
  | {
      readonly type: 'call';
      readonly id: number;
      readonly tool: { readonly name: string; readonly code: string; readonly pure: boolean };
      readonly limits: IsolateLimits;
      readonly args: unknown;
      readonly meta: CallMeta;
    }
  /** Settles a `ctx.fetch` the tool is waiting for. */
  | { readonly type: 'fetched'; readonly id: number; readonly fetchId: number; readonly ok: boolean; readonly payload: unknown }
  /** Stops the call now (the run was cancelled, or its egress was denied): its isolate is disposed. */
  | { readonly type: 'stop'; readonly id: number }
  /** Starts isolates of this memory limit ahead of their first call, and says when they are ready. */
  | { readonly type: 'prewarm'; readonly memoryMb: number; readonly token: number };

/** How a call ended, as plain data: what the harness reported, or why the sandbox stopped it. */
export type CallOutcome = HarnessOutcome | { readonly kind: 'stopped'; readonly stop: SandboxStop; readonly message: string };

/**
 * What the runtime sends a tool's own process (the process and OS tiers), as one frame serialized
 * with v8.serialize (so arguments keep their Dates): the call. The process loads `module`, finds
 * the tool, runs it, answers, and exits.
 */
export interface ToolProcessCall {
  readonly module: string;
  readonly tool: string;
  readonly args: unknown;
  readonly meta: CallMeta;
  readonly maxOutputBytes: number;
  /** Whether to relay the loopback proxy port to the egress proxy's socket (the OS tier). */
  readonly egress: boolean;
}

/** What a tool's process sends back, each as one JSON frame: that the tool starts, its logs and span attributes, then how the call ended. */
export type FromToolProcess =
  | { readonly type: 'started' }
  | { readonly type: 'log'; readonly message: string }
  | { readonly type: 'annotate'; readonly attributes: unknown }
  | { readonly type: 'done'; readonly outcome: CallOutcome };
