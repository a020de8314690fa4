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
export { openPostgresStore, PostgresStore, POSTGRES_MIGRATIONS } from './store/postgresStore';
export type { PostgresStoreOptions, PostgresTarget, SqlPool, SqlSession } from './store/postgresStore';
export { openStore } from './store/openStore';
export { isPostgresUrl, redactConnectionString } from './store/storeLocation';
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
export { buildTrace, loadTraceSource, loadTraceTree, redactSpan, spanIdFor, traceFlags, KEEL_ATTRIBUTES } from './trace/buildTrace';
export type { TraceOptions, TraceSource } from './trace/buildTrace';
export { detectFlags, DEFAULT_REFUSAL_PHRASES } from './trace/detectors';
export type { DetectedFlag, DetectorOptions } from './trace/detectors';
export { Redactor, REDACTED, redactorFromEnv } from './trace/redact';
export { exportSpans, otlpJson, toReadableSpans } from './trace/otlp';
export { otlpConfig } from './trace/otlpConfig';
export type { OtlpConfig, OtlpOptions, OtlpProtocol } from './trace/otlpConfig';
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
export { forecast, forecastAgentRun, forecastRun } from './budget/forecast';
export type { Forecast, ModelForecast, RunForecast, Spread } from './budget/forecast';
export type { BudgetRecord, ReservationRecord } from './store/checkpointStore';
export { keepsMemory } from './memory/memoryCapable';
export type { MemoryCapableStore } from './memory/memoryCapable';
export { MEMORY_ROW_UPGRADES, searchableText } from './memory/memoryStore';
export type { MemoryOpKind, MemoryOpRecord, MemoryRowUpgrade, MemoryStore, MemoryWrite, NamespaceSummary, VersionedValue } from './memory/memoryStore';
export { fence } from './memory/channel';
export { progressOf, progressText } from './memory/progress';
export type { ThreadRecord, ThreadStore, ThreadSummary } from './threads/threadStore';
export { parseGoldenFile, GoldenFileError, GOLDEN_VERSION, CASE_TAGS } from './golden/goldenFile';
export type { GoldenFile, GoldenCase, CaseTag, Expectations, ArgMatcher, JudgeConfig, JudgePin, TextRange } from './golden/goldenFile';
export { checkAssertions, classifyIntent } from './golden/assertions';
export type { AssertionResult, RunFacts } from './golden/assertions';
export { CassettePlayer, Recorder, CassetteMismatchError, cassettePathFor, readCassette, writeCassette, requestHash } from './golden/cassette';
export type { Cassette, CassetteCase, Interaction } from './golden/cassette';
export { Judge, judgeModel, JUDGE_PROMPT_HASH } from './golden/judge';
export type { Verdict, JudgeIdentity } from './golden/judge';
export { parseControlFile, driftReport, checkDrift } from './golden/drift';
export type { DriftReport, ControlFile } from './golden/drift';
export { runGoldenFile, summarize } from './golden/runGolden';
export type { GoldenRunOptions, GoldenFileReport, CaseReport, CaseRun, GoldenEvent, GoldenMode } from './golden/runGolden';
export { DEFAULT_UNTRUSTED } from './guard/config';
export type { ResolvedGuard, ToolTrust, TrustCall, TrustedSource } from './guard/config';
export { fenceId } from './guard/fence';
export { screenContent, PATTERN_DESCRIPTIONS } from './guard/screen';
export type { InjectionPattern, ScreenFinding } from './guard/screen';
export { sanitizeAnswer, AnswerAllowList } from './guard/sanitize';
export type { AnswerGuardRecord, RemovedLink, TaintDecision, ToolGuardRecord } from './guard/record';
export { GUARDRAIL_ATTRIBUTES } from './trace/guardrailSpans';
export type { GuardrailName } from './trace/guardrailSpans';
export type { RunInspector, StepInfo } from './agent/inspector';
export { loadRecording } from './replay/recording';
export type { Recording } from './replay/recording';
export { agentsOf, replayRecording } from './replay/replay';
export type { ReplayOptions } from './replay/replay';
export { ReplayEngine } from './replay/replayEngine';
export type { ExceptionFilter, FunctionBreakpoint, LineBreakpoint, LiveFeed, Stop, StopReason } from './replay/replayEngine';
export { LiveRun } from './replay/liveRun';
export type { LiveRunOptions } from './replay/liveRun';
export { forkDocument, forkRun, parseForkDocument } from './replay/fork';
export type { ForkRequest } from './replay/fork';
export { renderTranscript, transcriptOf } from './replay/transcript';
export { evaluateExpression } from './replay/sandboxEval';
