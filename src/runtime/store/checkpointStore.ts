import type { Usage } from '../model/model';

export type RunState = 'running' | 'completed' | 'failed' | 'cancelled';
export const TERMINAL_STATES: readonly RunState[] = ['completed', 'failed', 'cancelled'];

export interface RunRecord {
  readonly id: string;
  readonly agent: string;
  /** Absolute path of the agent file the run was started from, when it came from one. */
  readonly agentFile: string | null;
  /** `provider:name` of the model the run was started with. */
  readonly model: string;
  readonly input: string;
  readonly state: RunState;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
  readonly stepCount: number;
  readonly usage: Usage;
  /** The final answer, when the run completed. */
  readonly result: string | null;
  /** Why the run failed or was cancelled. */
  readonly error: string | null;
}

export type StepKind = 'model' | 'tool';
export type StepStatus = 'in_progress' | 'completed' | 'failed';

/** One entry of a run's journal: a model call or a tool call, its inputs and what came of it. */
export interface StepRecord {
  readonly runId: string;
  readonly seq: number;
  readonly kind: StepKind;
  /** The model label for model steps, the tool name for tool steps. */
  readonly name: string;
  readonly status: StepStatus;
  readonly input: unknown;
  readonly output: unknown;
  readonly error: string | null;
  readonly idempotencyKey: string | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
}

export interface NewRun {
  readonly id: string;
  readonly agent: string;
  readonly agentFile: string | null;
  readonly model: string;
  readonly input: string;
  readonly createdAt: number;
}

export interface StepStart {
  readonly runId: string;
  readonly seq: number;
  readonly kind: StepKind;
  readonly name: string;
  readonly input: unknown;
  readonly idempotencyKey: string | null;
  readonly startedAt: number;
}

export interface StepEnd {
  readonly runId: string;
  readonly seq: number;
  readonly status: 'completed' | 'failed';
  readonly output: unknown;
  readonly error: string | null;
  readonly endedAt: number;
  /** Tokens this step used, added to the run's totals in the same transaction. */
  readonly usage: Usage;
}

export interface RunEnd {
  readonly runId: string;
  readonly state: Exclude<RunState, 'running'>;
  readonly result: string | null;
  readonly error: string | null;
  readonly endedAt: number;
}

/**
 * Where runs and their journals live. Every write is one durable transaction, so the journal is
 * the run's checkpoint: a step is recorded `in_progress` with its inputs before it executes and
 * with its result after. The interface is asynchronous so that network databases fit behind it.
 */
export interface CheckpointStore {
  /** Where the data lives, for messages (a file path or a connection string without secrets). */
  readonly location: string;
  createRun(run: NewRun): Promise<RunRecord>;
  beginStep(step: StepStart): Promise<StepRecord>;
  endStep(step: StepEnd): Promise<StepRecord>;
  finishRun(end: RunEnd): Promise<RunRecord>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(options?: { limit?: number }): Promise<RunRecord[]>;
  getSteps(runId: string): Promise<StepRecord[]>;
  /** The id of the one run whose id starts with `prefix`, so people can type a short id. */
  resolveRunId(prefix: string): Promise<string>;
  close(): Promise<void>;
}
