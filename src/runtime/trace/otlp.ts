import { SpanKind, SpanStatusCode, TraceFlags, type Attributes } from '@opentelemetry/api';
import { ExportResultCode, hrTimeDuration, millisToHrTime, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { KeelError, describeError } from '../errors';
import type { OtlpConfig } from './otlpConfig';
import { Redactor } from './redact';
import type { TraceSpan } from './span';

/**
 * Traces out of Keel over OTLP, with the official OpenTelemetry JS exporters: Keel's spans become
 * the SDK's ReadableSpans, which the OTLP/HTTP exporters encode (protobuf by default, as the OTLP
 * spec and Arize Phoenix want; JSON on request) and post. Jaeger, Phoenix and Langfuse all take it.
 */

export interface ReadableSpanOptions {
  /** The end time given to spans still open (a running run); defaults to now. */
  readonly now?: number;
  readonly resource?: Resource;
  /** Keel's version, for `service.version` and the instrumentation scope. */
  readonly version?: string;
}

/** The resource every exported span carries: `service.name` keel (or OTEL_SERVICE_NAME), and OTEL_RESOURCE_ATTRIBUTES. */
export function keelResource(version?: string): Resource {
  return resourceFromAttributes({ 'service.name': 'keel', ...(version === undefined ? {} : { 'service.version': version }) }).merge(
    detectResources({ detectors: [envDetector] }),
  );
}

const KINDS: Record<TraceSpan['kind'], SpanKind> = {
  agent: SpanKind.INTERNAL,
  model: SpanKind.CLIENT,
  tool: SpanKind.INTERNAL,
  retry: SpanKind.INTERNAL,
  approval: SpanKind.INTERNAL,
  guardrail: SpanKind.INTERNAL,
  memory: SpanKind.INTERNAL,
};

const STATUS: Record<TraceSpan['status'], SpanStatusCode> = {
  ok: SpanStatusCode.OK,
  error: SpanStatusCode.ERROR,
  unset: SpanStatusCode.UNSET,
};

/** Keel's spans as the OpenTelemetry SDK's ReadableSpans; each flag becomes a `keel.flag` event. */
export function toReadableSpans(spans: readonly TraceSpan[], options: ReadableSpanOptions = {}): ReadableSpan[] {
  const now = options.now ?? Date.now();
  const resource = options.resource ?? keelResource(options.version);
  const scope = options.version === undefined ? { name: 'keel' } : { name: 'keel', version: options.version };
  const kinds = new Map(spans.map((span) => [span.spanId, span.kind]));
  return spans.map((span) => {
    const end = Math.max(span.startTime, span.endTime ?? now);
    const startTime = millisToHrTime(span.startTime);
    const endTime = millisToHrTime(end);
    // A retry is a span of the same kind as the call it retries: a model call's attempts are client spans too.
    const kind = span.kind === 'retry' && span.parentSpanId !== null ? (kinds.get(span.parentSpanId) ?? 'retry') : span.kind;
    const events: TimedEvent[] = [
      ...span.events.map((event) => ({ name: event.name, time: millisToHrTime(event.time), attributes: toAttributes(event.attributes) })),
      ...span.flags.map((flag) => ({
        name: 'keel.flag',
        time: endTime,
        attributes: { 'keel.flag.kind': flag.kind, 'keel.flag.severity': flag.severity, 'keel.flag.message': flag.message },
      })),
    ];
    const readable: ReadableSpan = {
      name: span.name,
      kind: KINDS[kind],
      spanContext: () => ({ traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED }),
      ...(span.parentSpanId === null
        ? {}
        : { parentSpanContext: { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false } }),
      startTime,
      endTime,
      status: span.statusMessage === null ? { code: STATUS[span.status] } : { code: STATUS[span.status], message: span.statusMessage },
      attributes: toAttributes(span.endTime === null ? { ...span.attributes, 'keel.span.open': true } : span.attributes),
      links: [],
      events,
      duration: hrTimeDuration(startTime, endTime),
      ended: true,
      resource,
      instrumentationScope: scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
    return readable;
  });
}

function toAttributes(attributes: TraceSpan['attributes']): Attributes {
  return Object.fromEntries(Object.entries(attributes).map(([key, value]) => [key, Array.isArray(value) ? [...value] : value]));
}

/** The spans as an OTLP/JSON ExportTraceServiceRequest, exactly as the JSON exporter would post them. */
export function otlpJson(spans: readonly TraceSpan[], options: ReadableSpanOptions = {}): string {
  const bytes = JsonTraceSerializer.serializeRequest(toReadableSpans(spans, options));
  return bytes ? new TextDecoder().decode(bytes) : '{"resourceSpans":[]}';
}

/** Posts the spans to the endpoint with the official OTLP/HTTP exporter; throws a KeelError if they were not accepted. */
export async function exportSpans(spans: readonly TraceSpan[], config: OtlpConfig, options: ReadableSpanOptions = {}): Promise<void> {
  if (spans.length === 0) return;
  const settings = {
    url: config.url,
    headers: { ...config.headers },
    ...(config.timeoutMillis === undefined ? {} : { timeoutMillis: config.timeoutMillis }),
  };
  const exporter = config.protocol === 'http/json' ? new JsonTraceExporter(settings) : new ProtobufTraceExporter(settings);
  try {
    const result = await new Promise<ExportResult>((resolve) => exporter.export(toReadableSpans(spans, options), resolve));
    if (result.code !== ExportResultCode.SUCCESS) {
      throw new KeelError(
        new Redactor({ secrets: Object.values(config.headers) }).redact(
          `The OTLP endpoint ${config.url} did not take the trace: ${result.error ? describeError(result.error) : 'export failed'}.`,
        ),
      );
    }
  } finally {
    await exporter.shutdown();
  }
}
