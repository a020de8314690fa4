import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { KeelError } from '../../src/runtime/errors';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { buildTrace } from '../../src/runtime/trace/buildTrace';
import { exportSpans, otlpJson } from '../../src/runtime/trace/otlp';
import { otlpConfig, parseHeaders } from '../../src/runtime/trace/otlpConfig';
import type { TraceSpan } from '../../src/runtime/trace/span';
import { exportRunTrace, traceSettings } from '../../src/runtime/trace/traceSettings';
import { decodeExport, decodeJsonExport, startOtlpReceiver, type DecodedExport, type OtlpReceiver } from '../support/otlpReceiver';
import { useTraceRuns } from '../support/traceRuns';

const book = defineTool({
  name: 'book',
  description: 'Books a seat.',
  args: z.object({ flight: z.string() }),
  effect: 'idempotent',
  run: ({ flight }) => ({ confirmation: `C-${flight}` }),
});

const agent = defineAgent({
  name: 'booker',
  instructions: 'Book.',
  model: scriptedModel([{ toolCalls: [{ name: 'book', args: { flight: 'UA66' } }] }, { toolCalls: [{ name: 'book', args: { flight: 'UA66' } }] }, 'Booked UA66, C-UA66.'], {
    name: 'book-script',
  }),
  tools: [book],
});

/** OTLP's span kinds. */
const INTERNAL = 1;
const CLIENT = 3;

describe('OTLP export with the official OpenTelemetry exporters, to a local OTLP/HTTP receiver', () => {
  const runs = useTraceRuns();
  let receiver: OtlpReceiver;

  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(() => receiver.close());

  /** Checks the decoded export against the spans it was made of. */
  function assertMatches(decoded: DecodedExport, spans: readonly TraceSpan[]): void {
    assert.equal(decoded.resource['service.name'], 'keel');
    assert.equal(decoded.resource['service.version'], '9.9.9');
    assert.deepEqual(decoded.scope, { name: 'keel', version: '9.9.9' });
    assert.equal(decoded.spans.length, spans.length);
    const [root, chat, tool] = decoded.spans;
    assert.ok(root && chat && tool);
    assert.equal(root.name, 'invoke_agent booker');
    assert.equal(root.parentSpanId, '');
    assert.equal(root.kind, INTERNAL);
    assert.equal(root.status.code, 1);
    assert.equal(root.attributes['gen_ai.operation.name'], 'invoke_agent');
    assert.equal(root.attributes['gen_ai.agent.name'], 'booker');
    assert.equal(root.attributes['gen_ai.conversation.id'], spans[0]?.attributes['gen_ai.conversation.id']);
    assert.equal(chat.name, 'chat book-script');
    assert.equal(chat.kind, CLIENT);
    assert.equal(chat.parentSpanId, root.spanId);
    assert.equal(chat.attributes['gen_ai.provider.name'], 'keel.scripted');
    assert.equal(chat.attributes['gen_ai.request.model'], 'book-script');
    assert.deepEqual(chat.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
    assert.equal(chat.attributes['gen_ai.usage.input_tokens'], spans[1]?.attributes['gen_ai.usage.input_tokens']);
    assert.equal(typeof chat.attributes['gen_ai.usage.output_tokens'], 'number');
    assert.equal(tool.name, 'execute_tool book');
    assert.equal(tool.kind, INTERNAL);
    assert.equal(tool.attributes['gen_ai.tool.name'], 'book');
    assert.equal(tool.attributes['gen_ai.tool.call.id'], 'call_1_1');
    assert.equal(tool.attributes['keel.effect'], 'idempotent');
    assert.equal(tool.attributes['keel.step.id'], 2);
    decoded.spans.forEach((span, index) => {
      const original = spans[index];
      assert.equal(span.traceId, original?.traceId);
      assert.equal(span.spanId, original?.spanId);
      assert.equal(span.startTimeUnixNano, BigInt(original?.startTime ?? 0) * 1_000_000n);
      assert.equal(span.endTimeUnixNano, BigInt(original?.endTime ?? 0) * 1_000_000n);
    });
    const repeated = decoded.spans[4];
    assert.equal(repeated?.name, 'execute_tool book');
    assert.deepEqual(repeated?.attributes['keel.flags'], ['repeated_call']);
    assert.deepEqual(
      repeated?.events.map((event) => [event.name, event.attributes['keel.flag.kind'], event.attributes['keel.flag.severity']]),
      [['keel.flag', 'repeated_call', 'warning']],
    );
  }

  it('posts OTLP/JSON when asked, with the configured headers', async () => {
    const { source } = await runs.run(agent);
    const spans = buildTrace(source);
    const config = otlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc%20123,x-project=keel' });
    assert.ok(config);
    await exportSpans(spans, config, { version: '9.9.9' });
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/v1/traces');
    assert.match(request.headers['content-type'] ?? '', /application\/json/);
    assert.equal(request.headers['x-api-key'], 'abc 123');
    assert.equal(request.headers['x-project'], 'keel');
    assertMatches(decodeExport(request), spans);
    assert.deepEqual(decodeJsonExport(otlpJson(spans, { version: '9.9.9' })), decodeExport(request), 'keel export prints what the exporter posts');
  });

  it('posts OTLP/protobuf by default, as the OTLP spec and Arize Phoenix want', async () => {
    const { source } = await runs.run(agent);
    const spans = buildTrace(source);
    const config = otlpConfig({ endpoint: `${receiver.url}/custom/traces`, headers: { authorization: 'Basic cGs6c2s=' } }, {});
    assert.ok(config);
    await exportSpans(spans, config, { version: '9.9.9' });
    const [request] = await receiver.waitForRequests(1);
    assert.equal(request?.path, '/custom/traces');
    assert.equal(request?.headers['content-type'], 'application/x-protobuf');
    assert.equal(request?.headers['authorization'], 'Basic cGs6c2s=');
    assert.ok(request);
    assertMatches(decodeExport(request), spans);
  });

  it('reads the endpoint, headers and protocol from the standard environment variables', () => {
    assert.equal(otlpConfig({}, {}), null);
    assert.equal(otlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })?.url, 'http://collector:4318/v1/traces');
    const specific = otlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/api/public/otel/v1/traces' });
    assert.equal(specific?.url, 'http://b:9999/api/public/otel/v1/traces');
    assert.equal(specific?.protocol, 'http/protobuf');
    assert.equal(otlpConfig({ endpoint: 'http://c/v1/traces' }, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b' })?.url, 'http://c/v1/traces');
    assert.deepEqual(
      otlpConfig({ headers: { c: '3' } }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=two' })?.headers,
      { a: '1', b: 'two', c: '3' },
    );
    assert.deepEqual(parseHeaders('Authorization=Basic%20cGs6c2s%3D, broken ,=x'), { Authorization: 'Basic cGs6c2s=' });
    assert.throws(() => otlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTLP\/HTTP: the protocol must be http\/protobuf or http\/json/);
    assert.throws(() => otlpConfig({ endpoint: 'not a url' }, {}), /is not a URL/);
  });

  it('says what went wrong when the endpoint refuses, without the headers secrets', async () => {
    const { source } = await runs.run(agent);
    receiver.respondWith(400);
    const config = otlpConfig({ endpoint: `${receiver.url}/v1/traces`, protocol: 'http/json', headers: { authorization: 'Bearer very-secret-token-123' } }, {});
    assert.ok(config);
    await assert.rejects(exportSpans(buildTrace(source), config), (error: unknown) => {
      assert.ok(error instanceof KeelError);
      assert.match(error.message, /did not take the trace/);
      assert.ok(!error.message.includes('very-secret-token-123'));
      return true;
    });
  });

  it('exports a run when it has ended, not while it is paused or going', async () => {
    const settings = traceSettings({ otlp: { endpoint: `${receiver.url}/v1/traces`, protocol: 'http/json' } }, {});
    const { run } = await runs.run(agent);
    assert.equal(await exportRunTrace(runs.store(), run.id, settings), true);
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(decodeExport(request).spans.length, 6);

    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = defineTool({ name: 'slow', description: 'Waits.', args: z.object({}), effect: 'none', run: () => gate.then(() => 'ok') });
    const waiting = defineAgent({ name: 'waiter', instructions: '', model: scriptedModel([{ toolCalls: [{ name: 'slow' }] }, 'Done.']), tools: [slow] });
    const handle = await new Runtime({ store: runs.store() }).start(waiting, { input: 'wait' });
    assert.equal(await exportRunTrace(runs.store(), handle.runId, settings), false, 'a running run is not exported yet');
    release();
    await handle.done;
    assert.equal(await exportRunTrace(runs.store(), handle.runId, settings), true);
    assert.equal(await exportRunTrace(runs.store(), handle.runId, traceSettings({}, {})), false, 'nothing is exported without an endpoint');
    assert.equal(receiver.requests.length, 2);
  });

  it('exports a run tree as one trace when its top-level run ends: the sub-agent run’s spans under the tool call that started it', async () => {
    const settings = traceSettings({ otlp: { endpoint: `${receiver.url}/v1/traces`, protocol: 'http/protobuf' } }, {});
    const helper = defineAgent({ name: 'helper', instructions: 'Help.', model: scriptedModel(['Helped.'], { name: 'help-script' }) });
    const ask = defineTool({ name: 'ask_helper', description: 'Asks the helper.', args: z.object({}), effect: 'none', run: (_args, ctx) => ctx.subAgent(helper, 'help') });
    const lead = defineAgent({ name: 'lead', instructions: 'Lead.', model: scriptedModel([{ toolCalls: [{ name: 'ask_helper' }] }, 'Done.'], { name: 'lead-script' }), tools: [ask] });
    const { run } = await runs.run(lead);
    const [child] = await runs.store().childRuns(run.id);
    assert.ok(child);
    assert.equal(await exportRunTrace(runs.store(), child.id, settings), false, 'a sub-agent run is exported in its top-level run’s trace');
    assert.equal(await exportRunTrace(runs.store(), run.id, settings), true);
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    const { spans } = decodeExport(request);
    const named = (name: string) => spans.find((span) => span.name === name);
    assert.equal(named('invoke_agent helper')?.parentSpanId, named('execute_tool ask_helper')?.spanId);
    assert.equal(named('chat help-script')?.parentSpanId, named('invoke_agent helper')?.spanId);
    assert.equal(named('invoke_agent lead')?.parentSpanId, '');
    assert.deepEqual(new Set(spans.map((span) => span.traceId)), new Set([run.traceId]));
    assert.equal(new Set(spans.map((span) => span.spanId)).size, spans.length);
    assert.equal(receiver.requests.length, 1);
  });
});
