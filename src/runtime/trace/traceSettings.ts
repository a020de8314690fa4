import { TERMINAL_STATES, type CheckpointStore } from '../store/checkpointStore';
import type { TraceOptions } from './buildTrace';
import { otlpConfig, type OtlpConfig, type OtlpOptions } from './otlpConfig';
import { redactorFromEnv, type Redactor } from './redact';
import type { TraceSpan } from './span';

/** How traces are shown and exported: content capture, redaction, and where spans go. */
export interface TraceSettings {
  readonly captureContent: boolean;
  /** Whether OTLP exports carry content; as `captureContent` when absent. */
  readonly exportContent?: boolean;
  readonly redactor: Redactor;
  /** Null when no OTLP endpoint is configured: then nothing is exported when runs end. */
  readonly otlp: OtlpConfig | null;
  /** Keel's version, for `service.version` in exports. */
  readonly version?: string;
}

/** Settings given explicitly (the editor's settings, a command's flags); the environment fills the rest. */
export interface TraceSettingsInput {
  readonly captureContent?: boolean;
  /** Regular expressions of secrets to redact, on top of the built-in ones and `KEEL_REDACT`. */
  readonly redactPatterns?: readonly string[];
  readonly otlp?: OtlpOptions;
  readonly version?: string;
}

const YES = /^(?:1|true|yes|on)$/i;

/**
 * The settings for this process. Content is captured when `captureContent` says so, or when
 * KEEL_CAPTURE_CONTENT (or the conventions' OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
 * is `1`/`true`. Throws a KeelError for an invalid redaction pattern or endpoint.
 */
export function traceSettings(input: TraceSettingsInput = {}, env: NodeJS.ProcessEnv = process.env): TraceSettings {
  const captureContent =
    input.captureContent ??
    (YES.test(env['KEEL_CAPTURE_CONTENT'] ?? '') || YES.test(env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'] ?? ''));
  return {
    captureContent,
    redactor: redactorFromEnv(env, input.redactPatterns ?? []),
    otlp: otlpConfig(input.otlp, env),
    ...(input.version === undefined ? {} : { version: input.version }),
  };
}

/** The trace options these settings give, with what is known of the agent. */
export function traceOptions(settings: TraceSettings, agent: Omit<TraceOptions, 'captureContent' | 'redactor'> = {}): TraceOptions {
  return { ...agent, captureContent: settings.captureContent, redactor: settings.redactor };
}

/** Builds a run's trace from the store, its sub-agent runs nested in it, redacted and with content as the settings say. */
export async function runTrace(
  store: CheckpointStore,
  runId: string,
  settings: TraceSettings,
  agent: Omit<TraceOptions, 'captureContent' | 'redactor'> = {},
): Promise<TraceSpan[]> {
  // Loaded by the first trace built: a process that only reads its settings (keel runs) does not evaluate the trace builder and its detectors.
  const { buildTrace, loadTraceTree } = await import('./buildTrace.js');
  return buildTrace(await loadTraceTree(store, runId), traceOptions(settings, agent));
}

/**
 * Exports a run's trace to the configured OTLP endpoint, if there is one and the run has ended
 * (a paused or interrupted run is exported when it ends, as one trace). A sub-agent run's spans
 * go out in its top-level run's trace, under the tool call that started it, not on their own.
 * Returns whether it exported.
 */
export async function exportRunTrace(
  store: CheckpointStore,
  runId: string,
  settings: TraceSettings,
  agent: Omit<TraceOptions, 'captureContent' | 'redactor'> = {},
): Promise<boolean> {
  if (!settings.otlp) return false;
  const run = await store.getRun(runId);
  if (!run || run.parentRunId !== null || !TERMINAL_STATES.includes(run.state)) return false;
  const spans = await runTrace(store, runId, { ...settings, captureContent: settings.exportContent ?? settings.captureContent }, agent);
  // The OpenTelemetry exporters are loaded by the first export: a process that exports nothing does not evaluate them.
  const { exportSpans } = await import('./otlp.js');
  await exportSpans(spans, settings.otlp, settings.version === undefined ? {} : { version: settings.version });
  return true;
}
