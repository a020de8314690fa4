/**
 * A run as a trace: spans named and attributed after the OpenTelemetry GenAI semantic conventions
 * (`invoke_agent`, `chat`, `execute_tool`, `gen_ai.*` attributes), plus Keel's own under `keel.*`.
 * Plain JSON, so spans cross process and webview boundaries as they are.
 */

export type SpanKind = 'agent' | 'model' | 'tool' | 'retry' | 'approval' | 'guardrail' | 'memory';

export type AttributeValue = string | number | boolean | readonly string[];

export interface SpanEvent {
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
}

export type FlagKind =
  | 'tool_output_schema'
  | 'empty_answer'
  | 'refusal'
  | 'repeated_call'
  | 'ignored_tool_error'
  | 'unsupported_entity'
  | 'missing_required_tool'
  | 'injection'
  | 'exfiltration';

/** A quiet failure a detector found: the run looks fine, but this is likely wrong. */
export interface Flag {
  readonly kind: FlagKind;
  readonly severity: 'warning' | 'error';
  readonly message: string;
  /** The span it concerns; the run's span for run-wide flags. */
  readonly spanId: string;
}

export interface TraceSpan {
  /** 32 hex digits: the run's trace id, the same across pauses and resumes. */
  readonly traceId: string;
  /** 16 hex digits, derived from the run and the step, so it is stable however often it is built. */
  readonly spanId: string;
  readonly parentSpanId: string | null;
  /** As the conventions name them: `invoke_agent travel`, `chat gpt-4o-mini`, `execute_tool book_flight`. */
  readonly name: string;
  readonly kind: SpanKind;
  /** Milliseconds since the epoch. */
  readonly startTime: number;
  /** Null while the span is still open. */
  readonly endTime: number | null;
  readonly status: 'ok' | 'error' | 'unset';
  readonly statusMessage: string | null;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly events: readonly SpanEvent[];
  readonly flags: readonly Flag[];
}
