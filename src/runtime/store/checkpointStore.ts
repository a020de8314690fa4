import type { Amounts, BudgetLimits } from '../budget/budget';
import type { BreakerTally, BreakerUpdate } from '../effects/circuitBreaker';
import type { FailedAttempt } from '../effects/retry';
import type { Usage } from '../model/model';
import { StoreError } from '../errors';
import type { McpPin } from '../mcp/definitions';

/**
 * - `running`: a runtime process is executing it now.
 * - `interrupted`: its process stopped without finishing it (a crash, a kill); `keel resume` goes on.
 * - `waiting_approval`: paused durably until a person decides (see ApprovalRecord).
 * - `completed`, `failed`, `cancelled`: ended; `budget_exceeded`: stopped at a budget's limit, its
 *   work so far kept.
 */
export type RunState = 'running' | 'interrupted' | 'waiting_approval' | 'completed' | 'failed' | 'cancelled' | 'budget_exceeded';
export const TERMINAL_STATES: readonly RunState[] = ['completed', 'failed', 'cancelled', 'budget_exceeded'];
/** States a run can be resumed from. */
export const RESUMABLE_STATES: readonly RunState[] = ['interrupted', 'waiting_approval'];

export interface RunRecord {
  readonly id: string;
  readonly agent: string;
  /** Absolute path of the agent file the run was started from, when it came from one. */
  readonly agentFile: string | null;
  /** `provider:name` of the model the run was started with. */
  readonly model: string;
  readonly input: string;
  readonly state: RunState;
  /** One trace for the whole run, across pauses and resumes (32 hex digits, as in W3C trace context). */
  readonly traceId: string;
  /** The runtime process that runs or last ran it: `host/pid/token`. */
  readonly owner: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
  readonly stepCount: number;
  readonly usage: Usage;
  /** What the run's model calls cost, in USD, as far as their prices are known. */
  readonly costUsd: number;
  /** False when a model without a known price ran: `costUsd` is then a lower bound. */
  readonly costKnown: boolean;
  /** Time spent executing, pauses excluded, in milliseconds (counted when an execution stops). */
  readonly activeMs: number;
  /** The run's own limits, when it has any. */
  readonly budget: BudgetLimits | null;
  /** The agent as the run saw it when it started, for traces and audits long after. */
  readonly agentFacts: RecordedAgent | null;
  /** The run that started this one as a sub-agent, and the step that did. */
  readonly parentRunId: string | null;
  readonly parentSeq: number | null;
  /**
   * The thread the run continues: earlier runs of it are the start of its conversation. Absent in
   * stores that keep no threads (see `keepsMemory`).
   */
  readonly threadId?: string | null;
  /** The task the run works on: it reads and keeps the task's progress notes. Absent like `threadId`. */
  readonly taskId?: string | null;
  /** The final answer, when the run completed. */
  readonly result: string | null;
  /** Why the run failed, was cancelled, was interrupted or is waiting. */
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
  /** Attempts made so far, the current one included. */
  readonly attempts: number;
  /** Every attempt that failed, with how it was classified and how long Keel waited after it. */
  readonly failedAttempts: readonly FailedAttempt[];
  /** What a model step cost in USD; null for tool steps and models without a known price. */
  readonly costUsd: number | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
}

export interface NewRun {
  readonly id: string;
  readonly agent: string;
  readonly agentFile: string | null;
  readonly model: string;
  readonly input: string;
  readonly traceId: string;
  readonly owner: string;
  readonly createdAt: number;
  readonly budget?: BudgetLimits;
  readonly parentRunId?: string;
  readonly parentSeq?: number;
  readonly agentFacts?: RecordedAgent;
  readonly threadId?: string;
  readonly taskId?: string;
}

/** What a run records of its agent as it starts. */
export interface RecordedAgent {
  readonly instructions: string;
  readonly requiredTools: readonly string[];
  /** Each tool's effect, by tool name. */
  readonly toolEffects: Readonly<Record<string, 'none' | 'idempotent' | 'unsafe'>>;
  /** The MCP servers the run started with and every tool definition it took from them (see mcp/resolveTools.ts). */
  readonly mcp?: McpPin;
}

/** A side effect about to happen, entered in the effect ledger under its idempotency key. */
export interface EffectStart {
  readonly key: string;
  readonly tool: string;
  readonly effect: 'idempotent' | 'unsafe';
  readonly argsHash: string;
}

export interface StepStart {
  readonly runId: string;
  readonly seq: number;
  readonly kind: StepKind;
  readonly name: string;
  readonly input: unknown;
  readonly idempotencyKey: string | null;
  readonly startedAt: number;
  readonly effect?: EffectStart;
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
  /** The step's ledger entry, when it is a side effect. */
  readonly effectKey?: string;
  /** A model step's cost in USD; null when its price is unknown. */
  readonly costUsd?: number | null;
}

/**
 * One atomic checkpoint: the end of a step, the start of the next, or both. `durable` asks for
 * the write to reach the disk before returning even when the store normally relies on the
 * operating system (it is set before a side effect begins).
 */
export interface StepTransition {
  readonly end?: StepEnd;
  readonly begin?: StepStart;
  readonly durable?: boolean;
  /** A reservation to close in the same transaction: settled at `actual`, or released without it. */
  readonly close?: { readonly id: string; readonly actual?: Amounts; readonly at: number };
  /**
   * A reservation to make, all or nothing, before the rest: when it would take any of its budgets
   * over a limit, the transition throws BudgetExceededError and writes nothing.
   */
  readonly reserve?: NewReservation;
}

export interface BudgetRecord {
  /** `run:<runId>` for a run's own budget, `pool:<id>` for a shared one. */
  readonly id: string;
  readonly kind: 'run' | 'pool';
  readonly limits: BudgetLimits;
  readonly spent: Amounts;
  /** Held by reservations of calls in flight. */
  readonly reserved: Amounts;
  readonly createdAt: number;
}

export interface NewReservation {
  /** `{runId}:{seq}:{attempt}`. */
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly model: string;
  readonly budgetIds: readonly string[];
  readonly amounts: Amounts;
  readonly at: number;
}

export interface ReservationRecord {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly model: string;
  readonly budgetIds: readonly string[];
  readonly amounts: Amounts;
  readonly status: 'held' | 'settled' | 'released';
  readonly actual: Amounts | null;
  readonly createdAt: number;
  readonly closedAt: number | null;
}

export interface RunEnd {
  readonly runId: string;
  readonly state: Exclude<RunState, 'running'>;
  readonly result: string | null;
  readonly error: string | null;
  /** Set for ended runs; null for paused and interrupted ones. */
  readonly endedAt: number | null;
  readonly at: number;
  /** How long this execution ran, added to the run's active time. */
  readonly activeMs?: number;
}

export type EffectStatus = 'started' | 'completed' | 'failed';

export interface EffectRecord {
  readonly key: string;
  readonly runId: string;
  readonly seq: number;
  readonly tool: string;
  readonly effect: 'idempotent' | 'unsafe';
  readonly argsHash: string;
  readonly status: EffectStatus;
  readonly attempts: number;
  readonly result: unknown;
  readonly error: string | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
}

/**
 * Why a run waits for a person: `policy` when an approval rule asks for a decision before a tool
 * call; `unknown_outcome` when a side effect was in flight as its process died (did it happen?).
 */
export type ApprovalKind = 'unknown_outcome' | 'policy';

/**
 * What a person decided. For a policy approval: approve (naming the hash of the exact arguments
 * approved, which may be edited ones) or reject (the reason reaches the model). For an unknown
 * outcome: call again with the same key, take a result, or fail the call.
 */
export type Decision =
  | { readonly action: 'approve'; readonly argsHash: string; readonly args?: unknown }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'retry' }
  | { readonly action: 'done'; readonly result: unknown }
  | { readonly action: 'fail'; readonly reason: string };

export type ApprovalStatus = 'pending' | 'decided' | 'expired';

/** Where a decision came from. Only a person at the CLI or in the editor decides; a deadline can expire. */
export type DecisionSource = 'cli' | 'vscode' | 'deadline';

export interface ApprovalRecord {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly kind: ApprovalKind;
  readonly agent: string;
  readonly tool: string;
  readonly args: unknown;
  /** SHA-256 of the canonical JSON of `args`: a decision must name it to approve them. */
  readonly argsHash: string;
  /** The call in a few words for a person: `$640 NYC→LIS`. */
  readonly summary: string;
  readonly reason: string;
  readonly requestedAt: number;
  readonly deadline: number | null;
  readonly onExpiry: 'reject' | 'escalate';
  readonly escalateTo: string | null;
  readonly escalatedAt: number | null;
  readonly status: ApprovalStatus;
  readonly decision: Decision | null;
  readonly decidedBy: string | null;
  readonly decidedVia: DecisionSource | null;
  readonly decidedAt: number | null;
}

export interface NewApproval {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly kind: ApprovalKind;
  readonly agent: string;
  readonly tool: string;
  readonly args: unknown;
  readonly argsHash: string;
  readonly summary: string;
  readonly reason: string;
  readonly requestedAt: number;
  readonly deadline: number | null;
  readonly onExpiry: 'reject' | 'escalate';
  readonly escalateTo: string | null;
}

export interface DecisionMeta {
  readonly by: string;
  readonly via: DecisionSource;
  readonly at: number;
}

/**
 * Where runs, their journals, the effect ledger and pending approvals live. Every write is one
 * transaction, so the journal is the run's checkpoint: a step is recorded `in_progress` with its
 * inputs before it executes and with its result after. Asynchronous so that network databases
 * fit behind it.
 */
export interface CheckpointStore {
  /** Where the data lives, for messages (a file path or a connection string without secrets). */
  readonly location: string;
  createRun(run: NewRun): Promise<RunRecord>;
  /** Writes a step transition as one transaction. */
  transition(change: StepTransition): Promise<void>;
  /** Re-opens an `in_progress` step for another attempt after its process stopped. */
  restartStep(runId: string, seq: number, startedAt: number, interruption: FailedAttempt): Promise<void>;
  /** Records the failed attempts of a step that is still going. */
  recordFailedAttempts(runId: string, seq: number, failures: readonly FailedAttempt[], effectKey?: string): Promise<void>;
  /**
   * Marks attempt `attempt` of the side effect `key` as begun, just before it runs. False when that
   * attempt had been begun already: an execution began it and stopped without recording how it
   * ended, so whether it took effect is unknown. True when there is no such entry.
   */
  claimEffect(key: string, attempt: number): Promise<boolean>;
  /**
   * Stops a run: ended, paused for a decision, or interrupted. Refuses (UnfinishedSubRunError,
   * changing nothing) to complete a run while a sub-agent run under it has not ended.
   */
  finishRun(end: RunEnd): Promise<RunRecord>;
  /** Makes `owner` the run's process and its state `running`, if the run is in one of `from`. */
  claimRun(runId: string, owner: string, from: readonly RunState[], at: number): Promise<RunRecord | undefined>;
  /**
   * Gives a `budget_exceeded` run larger limits (its own record and its `run:<id>` budget) and makes
   * it `interrupted`, so that it can be resumed with its recorded work kept. Undefined when the run
   * is not `budget_exceeded`.
   */
  raiseRunBudget(runId: string, limits: BudgetLimits, at: number): Promise<RunRecord | undefined>;
  /** Marks `running` runs whose owner is gone as `interrupted`; returns them. */
  markInterrupted(isOwnerAlive: (owner: string) => boolean, at: number): Promise<RunRecord[]>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(options?: { limit?: number; states?: readonly RunState[] }): Promise<RunRecord[]>;
  getSteps(runId: string): Promise<StepRecord[]>;
  getEffects(runId: string): Promise<EffectRecord[]>;
  /** The id of the one run whose id starts with `prefix` (`run_` may be left out), so people can type a short id. */
  resolveRunId(prefix: string): Promise<string>;
  /** Records a pending approval, or returns the one already recorded for that step and kind. */
  requestApproval(approval: NewApproval): Promise<ApprovalRecord>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  findApproval(runId: string, seq: number, kind: ApprovalKind): Promise<ApprovalRecord | undefined>;
  listApprovals(options?: { status?: ApprovalStatus; runId?: string }): Promise<ApprovalRecord[]>;
  /**
   * Records a decision; refuses one on an approval that is no longer pending. `expired` marks a
   * decision the deadline made.
   */
  decideApproval(id: string, decision: Decision, meta: DecisionMeta, expired?: boolean): Promise<ApprovalRecord>;
  /** Hands a pending approval whose deadline passed to someone else, with a new deadline. */
  escalateApproval(id: string, at: number, deadline: number): Promise<ApprovalRecord>;
  /** Creates a budget unless one with that id exists (a pool many runs share is created once). */
  ensureBudget(budget: { id: string; kind: 'run' | 'pool'; limits: BudgetLimits; at: number }): Promise<void>;
  getBudgets(ids: readonly string[]): Promise<BudgetRecord[]>;
  listReservations(options?: { runId?: string; status?: ReservationRecord['status'] }): Promise<ReservationRecord[]>;
  /**
   * Settles a run's reservations still held by a process that died during its model call, at the
   * amounts reserved: the call may have been charged, so the spend is never underestimated.
   */
  settleHeld(runId: string, at: number): Promise<ReservationRecord[]>;
  /** The runs started by a run as sub-agents. */
  childRuns(parentRunId: string): Promise<RunRecord[]>;
  /**
   * Adds outcomes of calls to a dependency to its shared count (and opens or closes its circuit),
   * in one transaction, and returns what every process counted in the window: circuit breakers of
   * all the processes that share this store see one circuit per dependency.
   */
  tallyBreaker(update: BreakerUpdate): Promise<BreakerTally>;
  close(): Promise<void>;
}

/** A run cannot complete while a sub-agent run it started is paused or unfinished: its work would be lost. */
export class UnfinishedSubRunError extends StoreError {
  constructor(
    readonly runId: string,
    readonly child: RunRecord,
  ) {
    super(
      `Run ${runId} cannot complete while its ${child.agent} sub-agent (run ${child.id}) is ${child.state === 'waiting_approval' ? 'waiting for a decision' : child.state}.`,
    );
  }
}
