/**
 * A run as a trace, as the editor's Trace timeline shows it: spans named and attributed after the
 * OpenTelemetry GenAI conventions plus Keel's `keel.*` attributes, and the flags the detectors
 * raised. Plain JSON.
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
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  /** `invoke_agent travel`, `chat gpt-4o-mini`, `execute_tool book_flight`. */
  readonly name: string;
  readonly kind: SpanKind;
  /** Milliseconds since the epoch. */
  readonly startTime: number;
  /** Null while the span is open. */
  readonly endTime: number | null;
  readonly status: 'ok' | 'error' | 'unset';
  readonly statusMessage: string | null;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly events: readonly SpanEvent[];
  readonly flags: readonly Flag[];
}
