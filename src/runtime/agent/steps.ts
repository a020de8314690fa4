import { KeelError } from '../errors';

/** One attempt of a model call or a tool call, as the runtime hands it to its step runner. */
export interface StepAttempt {
  readonly runId: string;
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  /**
   * What names the call: the idempotency key of a tool call (`runId:modelSeq:callIndex`), or
   * `runId:seq` for a model call.
   */
  readonly key: string;
  /** 1 for the first attempt, counting the failed and interrupted ones before it. */
  readonly attempt: number;
  /** A tool call's side effect, when it has one: its entry in the effect ledger is `key`. */
  readonly effect?: 'idempotent' | 'unsafe';
}

/**
 * Where the model calls and tool calls of a run execute. The default runs them in place; a durable
 * engine runs each as a journaled step of its own (Restate's `ctx.run`), so that a replay takes its
 * result from the engine's journal instead of calling again.
 */
export interface StepRunner {
  run<T>(step: StepAttempt, execute: () => Promise<T>): Promise<T>;
}

export const DIRECT_STEPS: StepRunner = { run: (_step, execute) => execute() };

/**
 * An attempt that started before and never recorded how it ended: the process running it stopped
 * in the middle. It is not a failure of the call (nothing says it failed) and must not be retried
 * blindly; for an unsafe tool, a person decides what happened, as after a crash.
 */
export class AttemptInterruptedError extends KeelError {}
