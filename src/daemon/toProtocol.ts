import type { EditorAlert, Review } from '../protocol/alerts';
import type { RunEvent } from '../protocol/events';
import type { CaseReport, GoldenEvent, GoldenFileReport } from '../protocol/golden';
import type { Approval, Budget, MemoryItem, Reservation, Run, Step, Thread } from '../protocol/records';
import type { RunEvent as StoreRunEvent } from '../runtime/agent/events';
import type { CaseReport as StoreCaseReport, GoldenEvent as StoreGoldenEvent, GoldenFileReport as StoreGoldenFileReport } from '../runtime/golden/runGolden';
import type { MemoryItem as StoreMemoryItem } from '../runtime/memory/memoryStore';
import type { AlertRecord } from '../runtime/alerts/outbox';
import type { ReviewRecord } from '../runtime/review/reviewStore';
import type { ApprovalRecord, BudgetRecord, ReservationRecord, RunRecord, StepRecord } from '../runtime/store/checkpointStore';
import type { ThreadRecord } from '../runtime/threads/threadStore';

/**
 * Where store records become protocol values: every run, step, approval, budget, reservation,
 * thread and memory value the runtime process answers or reports goes through here, so what the
 * editor sees changes only when the protocol does. Values inside a record that are plain data
 * (usage, limits, a decision) are checked against the protocol's types by the compiler.
 */

export function toRun(run: RunRecord): Run {
  return {
    id: run.id,
    agent: run.agent,
    agentFile: run.agentFile,
    model: run.model,
    input: run.input,
    state: run.state,
    traceId: run.traceId,
    owner: run.owner,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    endedAt: run.endedAt,
    stepCount: run.stepCount,
    usage: run.usage,
    costUsd: run.costUsd,
    costKnown: run.costKnown,
    activeMs: run.activeMs,
    budget: run.budget,
    agentFacts: run.agentFacts,
    parentRunId: run.parentRunId,
    parentSeq: run.parentSeq,
    // Absent where the database keeps no threads, as in the record.
    ...(run.threadId === undefined ? {} : { threadId: run.threadId }),
    ...(run.taskId === undefined ? {} : { taskId: run.taskId }),
    result: run.result,
    error: run.error,
  };
}

export function toStep(step: StepRecord): Step {
  return {
    runId: step.runId,
    seq: step.seq,
    kind: step.kind,
    name: step.name,
    status: step.status,
    input: step.input,
    output: step.output,
    error: step.error,
    idempotencyKey: step.idempotencyKey,
    attempts: step.attempts,
    failedAttempts: step.failedAttempts,
    costUsd: step.costUsd,
    startedAt: step.startedAt,
    endedAt: step.endedAt,
  };
}

export function toApproval(approval: ApprovalRecord): Approval {
  return {
    id: approval.id,
    runId: approval.runId,
    seq: approval.seq,
    kind: approval.kind,
    agent: approval.agent,
    tool: approval.tool,
    args: approval.args,
    argsHash: approval.argsHash,
    summary: approval.summary,
    reason: approval.reason,
    requestedAt: approval.requestedAt,
    deadline: approval.deadline,
    onExpiry: approval.onExpiry,
    escalateTo: approval.escalateTo,
    escalatedAt: approval.escalatedAt,
    status: approval.status,
    decision: approval.decision,
    decidedBy: approval.decidedBy,
    decidedVia: approval.decidedVia,
    decidedAt: approval.decidedAt,
  };
}

export function toBudget(budget: BudgetRecord): Budget {
  return { id: budget.id, kind: budget.kind, limits: budget.limits, spent: budget.spent, reserved: budget.reserved, createdAt: budget.createdAt };
}

export function toReservation(reservation: ReservationRecord): Reservation {
  return {
    id: reservation.id,
    runId: reservation.runId,
    seq: reservation.seq,
    model: reservation.model,
    budgetIds: reservation.budgetIds,
    amounts: reservation.amounts,
    status: reservation.status,
    actual: reservation.actual,
    createdAt: reservation.createdAt,
    closedAt: reservation.closedAt,
  };
}

export function toThread(thread: ThreadRecord): Thread {
  return {
    id: thread.id,
    agent: thread.agent,
    title: thread.title,
    createdAt: thread.createdAt,
    updatedAt: thread.updatedAt,
    runCount: thread.runCount,
    summary: thread.summary,
  };
}

export function toMemoryItem(item: StoreMemoryItem): MemoryItem {
  return {
    namespace: item.namespace,
    key: item.key,
    value: item.value,
    channel: item.channel,
    revision: item.revision,
    writtenBy: item.writtenBy,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

/** A run's event as the editor hears it: the records it carries mapped, the rest as it is. */
export function toRunEvent(event: StoreRunEvent): RunEvent {
  switch (event.type) {
    case 'run_started':
    case 'run_finished':
      return { type: event.type, run: toRun(event.run) };
    case 'step_started':
    case 'step_finished':
      return { type: event.type, step: toStep(event.step) };
    case 'approval_requested':
      return { type: event.type, approval: toApproval(event.approval) };
    case 'model_delta':
    case 'tool_log':
    case 'step_retry':
    case 'budget_warning':
    case 'provider_overrun':
      return event;
  }
}

/** A golden case's report, without what only the CLI's report shows (the judge's verdicts). */
export function toCaseReport(report: StoreCaseReport): CaseReport {
  return {
    name: report.name,
    tags: report.tags,
    range: report.range,
    runs: report.runs.map(({ status, runId, durationMs, answer, assertions, error, mismatch }) => ({ status, runId, durationMs, answer, assertions, error, mismatch })),
    passed: report.passed,
    status: report.status,
    flaky: report.flaky,
  };
}

export function toGoldenFileReport(report: StoreGoldenFileReport): GoldenFileReport {
  return { file: report.file, agentFile: report.agentFile, error: report.error, cases: report.cases.map(toCaseReport), durationMs: report.durationMs };
}

export function toGoldenEvent(event: StoreGoldenEvent): GoldenEvent {
  switch (event.type) {
    case 'caseStarted':
      return event;
    case 'caseFinished':
      return { type: event.type, file: event.file, report: toCaseReport(event.report) };
    case 'fileFinished':
      return { type: event.type, report: toGoldenFileReport(event.report) };
  }
}

export function toEditorAlert(alert: AlertRecord): EditorAlert {
  return { id: alert.id, event: alert.event, severity: alert.severity, title: alert.title, body: alert.body, runId: alert.runId, at: alert.at };
}

export function toReview(review: ReviewRecord): Review {
  return {
    id: review.id,
    runId: review.runId,
    seq: review.seq,
    agent: review.agent,
    tool: review.tool,
    effect: review.effect,
    args: review.args,
    outcome: review.outcome,
    reason: review.reason,
    sampledAt: review.sampledAt,
    verdict: review.verdict,
    note: review.note,
    reviewedBy: review.reviewedBy,
    reviewedAt: review.reviewedAt,
  };
}
