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
