/** keel-agents: the runtime library. Nothing here imports vscode. */
export * from './agentApi';
export { Runtime } from './agent/runtime';
export type { RunHandle, RuntimeOptions, StartOptions } from './agent/runtime';
export type { RunEvent, RunEventListener } from './agent/events';
export { loadAgentFile } from './agent/loader';
export type { LoadedAgent } from './agent/loader';
export { resolveModel } from './model/resolve';
export { decide, applyDeadlines, argsHash, DecisionError } from './approval/decide';
export type { DecisionRequest } from './approval/decide';
export { approvalStats } from './approval/metrics';
export type { ApprovalCounts, ApprovalStats } from './approval/metrics';
export { CircuitBreakers, CircuitOpenError } from './effects/circuitBreaker';
export type { BreakerPolicy } from './effects/circuitBreaker';
export { modelLabel } from './model/model';
export type { AssistantMessage, FinishReason, ModelCallOptions, ToolMessage, ToolSpec } from './model/model';
export { openSqliteStore, SqliteStore } from './store/sqliteStore';
export type { SqliteStoreOptions } from './store/sqliteStore';
export { TERMINAL_STATES } from './store/checkpointStore';
export type {
  ApprovalKind,
  ApprovalRecord,
  ApprovalStatus,
  CheckpointStore,
  Decision,
  DecisionSource,
  EffectRecord,
  RunRecord,
  RunState,
  StepKind,
  StepRecord,
  StepStatus,
} from './store/checkpointStore';
export { findWorkspaceRoot, databasePathFor, DATABASE_RELATIVE_PATH } from './workspace';
export {
  KeelError,
  AgentDefinitionError,
  AgentLoadError,
  StoreError,
  ModelError,
  ModelSpecError,
  describeError,
} from './errors';
export { buildTrace, loadTraceSource, redactSpan, spanIdFor, traceFlags, KEEL_ATTRIBUTES } from './trace/buildTrace';
export type { TraceOptions, TraceSource } from './trace/buildTrace';
export { detectFlags, DEFAULT_REFUSAL_PHRASES } from './trace/detectors';
export type { DetectedFlag, DetectorOptions } from './trace/detectors';
export { Redactor, REDACTED, redactorFromEnv } from './trace/redact';
export { exportSpans, otlpConfig, otlpJson, toReadableSpans } from './trace/otlp';
export type { OtlpConfig, OtlpOptions, OtlpProtocol } from './trace/otlp';
export { auditRun, decisionsUsing } from './trace/audit';
export type { AuditCall, AuditDecision } from './trace/audit';
export { traceSettings, runTrace, exportRunTrace } from './trace/traceSettings';
export type { TraceSettings, TraceSettingsInput } from './trace/traceSettings';
export type { AttributeValue, Flag, FlagKind, SpanEvent, SpanKind, TraceSpan } from './trace/span';
export { EgressPolicy } from './sandbox/egress';
export type { Resolve, ResolvedAddress } from './sandbox/egress';
export type { SandboxGrant } from './sandbox/grant';
export type { SandboxCall, ToolSandbox } from './sandbox/toolSandbox';
export type { SandboxDefault, SandboxOptions } from './sandbox/toolRunner';
export type { SandboxStop } from './sandbox/sandboxError';
export { BudgetExceededError } from './budget/budget';
export type { Amounts, BudgetDimension } from './budget/budget';
export { DEFAULT_PRICES, costOf, priceOf } from './budget/prices';
export { costOptions, costSettingsFromEnv } from './budget/config';
export type { CostSettings } from './budget/config';
export { forecast } from './budget/forecast';
export type { Forecast } from './budget/forecast';
export type { BudgetRecord, ReservationRecord } from './store/checkpointStore';
