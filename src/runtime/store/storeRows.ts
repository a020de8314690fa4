/*
 * The rows of the run tables as SQLite and PostgreSQL return them, and the records both stores
 * make of them. Times and token counts are numbers in SQLite and may be strings (BIGINT) in
 * PostgreSQL; `cost_known` is 0 or 1 in SQLite and a boolean in PostgreSQL.
 */
import type { BudgetLimits } from '../budget/budget';
import type { FailedAttempt } from '../effects/retry';
import type {
  ApprovalKind,
  ApprovalRecord,
  ApprovalStatus,
  BudgetRecord,
  Decision,
  DecisionSource,
  EffectRecord,
  EffectStatus,
  RecordedAgent,
  ReservationRecord,
  RunRecord,
  RunState,
  StepKind,
  StepRecord,
  StepStatus,
} from './checkpointStore';

/** A time or token count: a number in SQLite and PGlite, a string where node-postgres returns a BIGINT. */
export type Int = number | string;

export function int(value: Int): number {
  return Number(value);
}

export function intOrNull(value: Int | null): number | null {
  return value === null ? null : Number(value);
}

export interface RunRow {
  id: string;
  agent: string;
  agent_file: string | null;
  model: string;
  input: string;
  state: RunState;
  created_at: Int;
  updated_at: Int;
  ended_at: Int | null;
  step_count: number;
  input_tokens: Int;
  output_tokens: Int;
  result: string | null;
  error: string | null;
  trace_id: string;
  owner: string | null;
  parent_run_id: string | null;
  parent_seq: number | null;
  cost_usd: number;
  cost_known: number | boolean;
  active_ms: Int;
  budget: string | null;
  agent_facts: string | null;
  thread_id: string | null;
  task_id: string | null;
}

export interface BudgetRow {
  id: string;
  kind: 'run' | 'pool';
  limits: string;
  spent_input: Int;
  spent_output: Int;
  spent_usd: number;
  reserved_input: Int;
  reserved_output: Int;
  reserved_usd: number;
  created_at: Int;
}

export interface ReservationRow {
  id: string;
  run_id: string;
  seq: number;
  model: string;
  budget_ids: string;
  input_tokens: Int;
  output_tokens: Int;
  usd: number;
  status: 'held' | 'settled' | 'released';
  actual_input: Int | null;
  actual_output: Int | null;
  actual_usd: number | null;
  created_at: Int;
  closed_at: Int | null;
}

export interface StepRow {
  run_id: string;
  seq: number;
  kind: StepKind;
  name: string;
  status: StepStatus;
  input: string;
  output: string | null;
  error: string | null;
  idempotency_key: string | null;
  attempts: number;
  attempt_log: string;
  cost_usd: number | null;
  started_at: Int;
  ended_at: Int | null;
}

export interface EffectRow {
  key: string;
  run_id: string;
  seq: number;
  tool: string;
  effect: 'idempotent' | 'unsafe';
  args_hash: string;
  status: EffectStatus;
  attempts: number;
  result: string | null;
  error: string | null;
  started_at: Int;
  ended_at: Int | null;
}

export interface ApprovalRow {
  id: string;
  run_id: string;
  seq: number;
  kind: ApprovalKind;
  agent: string;
  tool: string;
  args: string;
  args_hash: string;
  summary: string;
  reason: string;
  requested_at: Int;
  deadline: Int | null;
  on_expiry: 'reject' | 'escalate';
  escalate_to: string | null;
  escalated_at: Int | null;
  status: ApprovalStatus;
  decision: string | null;
  decided_by: string | null;
  decided_via: DecisionSource | null;
  decided_at: Int | null;
}

export function toRun(row: RunRow): RunRecord {
  return {
    id: row.id,
    agent: row.agent,
    agentFile: row.agent_file,
    model: row.model,
    input: row.input,
    state: row.state,
    traceId: row.trace_id,
    owner: row.owner,
    createdAt: int(row.created_at),
    updatedAt: int(row.updated_at),
    endedAt: intOrNull(row.ended_at),
    stepCount: row.step_count,
    usage: { inputTokens: int(row.input_tokens), outputTokens: int(row.output_tokens) },
    costUsd: row.cost_usd,
    costKnown: row.cost_known === true || row.cost_known === 1,
    activeMs: int(row.active_ms),
    budget: row.budget === null ? null : (JSON.parse(row.budget) as BudgetLimits),
    agentFacts: row.agent_facts === null ? null : (JSON.parse(row.agent_facts) as RecordedAgent),
    parentRunId: row.parent_run_id,
    parentSeq: row.parent_seq,
    threadId: row.thread_id,
    taskId: row.task_id,
    result: row.result,
    error: row.error,
  };
}

export function toBudget(row: BudgetRow): BudgetRecord {
  return {
    id: row.id,
    kind: row.kind,
    limits: JSON.parse(row.limits) as BudgetLimits,
    spent: { inputTokens: int(row.spent_input), outputTokens: int(row.spent_output), usd: row.spent_usd },
    reserved: { inputTokens: int(row.reserved_input), outputTokens: int(row.reserved_output), usd: row.reserved_usd },
    createdAt: int(row.created_at),
  };
}

export function toReservation(row: ReservationRow): ReservationRecord {
  return {
    id: row.id,
    runId: row.run_id,
    seq: row.seq,
    model: row.model,
    budgetIds: JSON.parse(row.budget_ids) as string[],
    amounts: { inputTokens: int(row.input_tokens), outputTokens: int(row.output_tokens), usd: row.usd },
    status: row.status,
    actual:
      row.actual_input === null
        ? null
        : { inputTokens: int(row.actual_input), outputTokens: int(row.actual_output ?? 0), usd: row.actual_usd ?? 0 },
    createdAt: int(row.created_at),
    closedAt: intOrNull(row.closed_at),
  };
}

export function toStep(row: StepRow): StepRecord {
  return {
    runId: row.run_id,
    seq: row.seq,
    kind: row.kind,
    name: row.name,
    status: row.status,
    input: JSON.parse(row.input) as unknown,
    output: row.output === null ? null : (JSON.parse(row.output) as unknown),
    error: row.error,
    idempotencyKey: row.idempotency_key,
    attempts: row.attempts,
    failedAttempts: JSON.parse(row.attempt_log) as FailedAttempt[],
    costUsd: row.cost_usd,
    startedAt: int(row.started_at),
    endedAt: intOrNull(row.ended_at),
  };
}

export function toEffect(row: EffectRow): EffectRecord {
  return {
    key: row.key,
    runId: row.run_id,
    seq: row.seq,
    tool: row.tool,
    effect: row.effect,
    argsHash: row.args_hash,
    status: row.status,
    attempts: row.attempts,
    result: row.result === null ? null : (JSON.parse(row.result) as unknown),
    error: row.error,
    startedAt: int(row.started_at),
    endedAt: intOrNull(row.ended_at),
  };
}

export function toApproval(row: ApprovalRow): ApprovalRecord {
  return {
    id: row.id,
    runId: row.run_id,
    seq: row.seq,
    kind: row.kind,
    agent: row.agent,
    tool: row.tool,
    args: JSON.parse(row.args) as unknown,
    argsHash: row.args_hash,
    summary: row.summary,
    reason: row.reason,
    requestedAt: int(row.requested_at),
    deadline: intOrNull(row.deadline),
    onExpiry: row.on_expiry,
    escalateTo: row.escalate_to,
    escalatedAt: intOrNull(row.escalated_at),
    status: row.status,
    decision: row.decision === null ? null : (JSON.parse(row.decision) as Decision),
    decidedBy: row.decided_by,
    decidedVia: row.decided_via,
    decidedAt: intOrNull(row.decided_at),
  };
}
