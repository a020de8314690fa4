import type { Memory, Progress } from '../memory/memory';

/**
 * What a tool does to the world, which decides what Keel may do when it is unsure whether a call
 * happened: `none` reads only; `idempotent` may be repeated with the same idempotency key;
 * `unsafe` must never be repeated blindly.
 */
export type Effect = 'none' | 'idempotent' | 'unsafe';

/**
 * What every tool call is given, sandboxed or not (a tool in the sandbox gets `fetch` besides; one
 * outside, `subAgent`). Apart from defineAgent, so approval policies and sandboxes need not import it.
 */
export interface ToolCallContext {
  readonly runId: string;
  /** The journal step of the model call that asked for this tool call. */
  readonly stepId: number;
  /** Position of this call among the tool calls of that model step. */
  readonly callIndex: number;
  /** `{runId}:{stepId}:{callIndex}`: stable across retries and resumes; pass it to the API you call. */
  readonly idempotencyKey: string;
  readonly signal: AbortSignal;
  log(message: string): void;
  /**
   * Long-term memory (`get`, `put`, `search`, `delete`, `list`), shared by runs. Every call is
   * journaled with its result under this step, so when the step runs again (a retry, a resume, a
   * replay) it returns what it returned the first time and no write is made twice. Not available
   * in sandboxed tools.
   */
  readonly memory: Memory;
  /** The progress notes of the run's task (`keel run --task <id>`); `taskId` is null in runs without one. */
  readonly progress: Progress;
  /** The W3C trace context of this call's span (`00-<trace id>-<span id>-01`), for the services it calls. */
  readonly traceparent: string;
  /** Adds attributes to this call's span in the trace (recorded with the step); Keel's own attributes win. */
  annotate(attributes: Readonly<Record<string, string | number | boolean>>): void;
}
