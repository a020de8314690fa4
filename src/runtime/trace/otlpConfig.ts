import { KeelError } from '../errors';
import { Redactor } from './redact';

/**
 * Where traces are exported over OTLP, from Keel's configuration and the standard environment
 * variables. Apart from the exporter (otlp.ts), which loads the OpenTelemetry SDK: reading the
 * configuration does not.
 */

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtlpConfig {
  /** The full URL spans are posted to, such as `http://localhost:4318/v1/traces`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly protocol: OtlpProtocol;
  readonly timeoutMillis?: number;
}

export interface OtlpOptions {
  /** The traces endpoint, used as is (like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). */
  readonly endpoint?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly protocol?: string;
  readonly timeoutMillis?: number;
}

/**
 * Where to export, from `options` first, then the standard environment variables:
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is) or OTEL_EXPORTER_OTLP_ENDPOINT (plus `/v1/traces`),
 * OTEL_EXPORTER_OTLP_[TRACES_]HEADERS (`key=value,...`) and OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL.
 * Null when no endpoint is configured.
 */
export function otlpConfig(options: OtlpOptions = {}, env: NodeJS.ProcessEnv = process.env): OtlpConfig | null {
  const url = options.endpoint?.trim() || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim() || withTracesPath(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (!url) return null;
  try {
    new URL(url);
  } catch {
    throw new KeelError(`The OTLP endpoint ${JSON.stringify(new Redactor().redact(url))} is not a URL; give one such as http://localhost:4318/v1/traces.`);
  }
  const protocol = (options.protocol ?? env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'] ?? 'http/protobuf').trim();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new KeelError(`Keel exports traces over OTLP/HTTP: the protocol must be http/protobuf or http/json, not ${JSON.stringify(protocol)}.`);
  }
  return {
    url,
    headers: {
      ...parseHeaders(env['OTEL_EXPORTER_OTLP_HEADERS']),
      ...parseHeaders(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS']),
      ...options.headers,
    },
    protocol,
    ...(options.timeoutMillis === undefined ? {} : { timeoutMillis: options.timeoutMillis }),
  };
}

function withTracesPath(base: string | undefined): string | undefined {
  const trimmed = base?.trim();
  if (!trimmed) return undefined;
  return `${trimmed.replace(/\/+$/, '')}/v1/traces`;
}

/** `key=value,key2=value2` with URL-encoded values, as the OTLP exporter spec defines the headers variables. */
export function parseHeaders(list: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (list ?? '').split(',')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    const key = decode(pair.slice(0, equals).trim());
    if (key) headers[key] = decode(pair.slice(equals + 1).trim());
  }
  return headers;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
