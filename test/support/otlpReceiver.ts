import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { within } from './processes';

/**
 * A small OTLP/HTTP trace receiver on 127.0.0.1, as Jaeger, Phoenix or Langfuse would be: it
 * takes POSTs of ExportTraceServiceRequest as JSON or protobuf and decodes both into one shape.
 */

export type DecodedValue = string | number | boolean | DecodedValue[];

export interface DecodedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP's numbering: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes: Readonly<Record<string, DecodedValue>>;
  readonly events: readonly { readonly name: string; readonly attributes: Readonly<Record<string, DecodedValue>> }[];
  /** 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string };
}

export interface DecodedExport {
  readonly resource: Readonly<Record<string, DecodedValue>>;
  readonly scope: { readonly name: string; readonly version: string };
  readonly spans: readonly DecodedSpan[];
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`; spans go to `${url}/v1/traces`. */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** The HTTP status the next requests get (200 by default). */
  respondWith(status: number): void;
  /** Resolves once `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const watchers = new Set<() => void>();
  let status = 200;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
      const json = (request.headers['content-type'] ?? '').includes('json');
      response.writeHead(status, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      response.end(json ? (status === 200 ? '{}' : '{"code":3,"message":"rejected by the test receiver"}') : '');
      for (const watcher of watchers) watcher();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    respondWith: (code) => {
      status = code;
    },
    waitForRequests: (count, timeoutMs = 10_000) =>
      within(
        new Promise<ReceivedRequest[]>((resolve) => {
          const check = () => {
            if (requests.length < count) return;
            watchers.delete(check);
            resolve(requests.slice(0, count));
          };
          watchers.add(check);
          check();
        }),
        `${count} OTLP request(s) arriving`,
        timeoutMs,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Decodes a request body by its content type. */
export function decodeExport(request: ReceivedRequest): DecodedExport {
  const type = request.headers['content-type'] ?? '';
  if (type.includes('application/json')) return decodeJsonExport(request.body.toString('utf8'));
  if (type.includes('application/x-protobuf')) return decodeProtobufExport(request.body);
  throw new Error(`unexpected content type ${type}`);
}

// --- OTLP/JSON -------------------------------------------------------------------------------

interface JsonAnyValue {
  readonly stringValue?: string;
  readonly boolValue?: boolean;
  readonly intValue?: string | number;
  readonly doubleValue?: number;
  readonly arrayValue?: { readonly values?: readonly JsonAnyValue[] };
}

interface JsonKeyValue {
  readonly key: string;
  readonly value: JsonAnyValue;
}

interface JsonSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes?: readonly JsonKeyValue[];
  readonly events?: readonly { readonly name: string; readonly attributes?: readonly JsonKeyValue[] }[];
  readonly status?: { readonly code?: number; readonly message?: string };
}

interface JsonRequest {
  readonly resourceSpans: readonly {
    readonly resource?: { readonly attributes?: readonly JsonKeyValue[] };
    readonly scopeSpans: readonly { readonly scope?: { readonly name?: string; readonly version?: string }; readonly spans: readonly JsonSpan[] }[];
  }[];
}

export function decodeJsonExport(text: string): DecodedExport {
  const request = JSON.parse(text) as JsonRequest;
  const resourceSpans = request.resourceSpans[0];
  const scopeSpans = resourceSpans?.scopeSpans[0];
  if (!resourceSpans || !scopeSpans) throw new Error('the export holds no spans');
  return {
    resource: jsonAttributes(resourceSpans.resource?.attributes),
    scope: { name: scopeSpans.scope?.name ?? '', version: scopeSpans.scope?.version ?? '' },
    spans: scopeSpans.spans.map((span) => ({
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: span.parentSpanId ?? '',
      name: span.name,
      kind: span.kind,
      startTimeUnixNano: BigInt(span.startTimeUnixNano),
      endTimeUnixNano: BigInt(span.endTimeUnixNano),
      attributes: jsonAttributes(span.attributes),
      events: (span.events ?? []).map((event) => ({ name: event.name, attributes: jsonAttributes(event.attributes) })),
      status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
    })),
  };
}

function jsonAttributes(list: readonly JsonKeyValue[] | undefined): Record<string, DecodedValue> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, jsonValue(value)]));
}

function jsonValue(value: JsonAnyValue): DecodedValue {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(jsonValue);
  return '';
}

// --- OTLP/protobuf: just enough of the wire format to read an ExportTraceServiceRequest ---------

interface Field {
  readonly number: number;
  readonly wire: number;
  /** varint and fixed64 values */
  readonly int?: bigint;
  readonly bytes?: Buffer;
}

function fields(buffer: Buffer): Field[] {
  const out: Field[] = [];
  let offset = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buffer[offset++];
      if (byte === undefined) throw new Error('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (offset < buffer.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      out.push({ number, wire, int: varint() });
    } else if (wire === 1) {
      out.push({ number, wire, int: buffer.readBigUInt64LE(offset), bytes: buffer.subarray(offset, offset + 8) });
      offset += 8;
    } else if (wire === 2) {
      const length = Number(varint());
      out.push({ number, wire, bytes: buffer.subarray(offset, offset + length) });
      offset += length;
    } else if (wire === 5) {
      out.push({ number, wire, int: BigInt(buffer.readUInt32LE(offset)) });
      offset += 4;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  return out;
}

const all = (list: readonly Field[], number: number) => list.filter((field) => field.number === number);
const first = (list: readonly Field[], number: number) => list.find((field) => field.number === number);
const text = (field: Field | undefined) => field?.bytes?.toString('utf8') ?? '';
const hex = (field: Field | undefined) => field?.bytes?.toString('hex') ?? '';

export function decodeProtobufExport(body: Buffer): DecodedExport {
  const resourceSpans = fields(first(fields(body), 1)?.bytes ?? Buffer.alloc(0));
  const resource = fields(first(resourceSpans, 1)?.bytes ?? Buffer.alloc(0));
  const scopeSpans = fields(first(resourceSpans, 2)?.bytes ?? Buffer.alloc(0));
  const scope = fields(first(scopeSpans, 1)?.bytes ?? Buffer.alloc(0));
  return {
    resource: protoAttributes(all(resource, 1)),
    scope: { name: text(first(scope, 1)), version: text(first(scope, 2)) },
    spans: all(scopeSpans, 2).map((field) => {
      const span = fields(field.bytes ?? Buffer.alloc(0));
      const status = fields(first(span, 15)?.bytes ?? Buffer.alloc(0));
      return {
        traceId: hex(first(span, 1)),
        spanId: hex(first(span, 2)),
        parentSpanId: hex(first(span, 4)),
        name: text(first(span, 5)),
        kind: Number(first(span, 6)?.int ?? 0n),
        startTimeUnixNano: first(span, 7)?.int ?? 0n,
        endTimeUnixNano: first(span, 8)?.int ?? 0n,
        attributes: protoAttributes(all(span, 9)),
        events: all(span, 11).map((eventField) => {
          const event = fields(eventField.bytes ?? Buffer.alloc(0));
          return { name: text(first(event, 2)), attributes: protoAttributes(all(event, 3)) };
        }),
        status: { code: Number(first(status, 3)?.int ?? 0n), message: text(first(status, 2)) },
      };
    }),
  };
}

function protoAttributes(list: readonly Field[]): Record<string, DecodedValue> {
  return Object.fromEntries(
    list.map((field) => {
      const pair = fields(field.bytes ?? Buffer.alloc(0));
      return [text(first(pair, 1)), protoValue(fields(first(pair, 2)?.bytes ?? Buffer.alloc(0)))];
    }),
  );
}

function protoValue(value: readonly Field[]): DecodedValue {
  const [field] = value;
  if (!field) return '';
  switch (field.number) {
    case 1:
      return text(field);
    case 2:
      return field.int === 1n;
    case 3:
      return Number(BigInt.asIntN(64, field.int ?? 0n));
    case 4:
      return field.bytes?.readDoubleLE(0) ?? 0;
    case 5:
      return all(fields(field.bytes ?? Buffer.alloc(0)), 1).map((item) => protoValue(fields(item.bytes ?? Buffer.alloc(0))));
    default:
      return '';
  }
}
