import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditDecision } from '../../src/runtime/trace/audit';
import type { Flag, TraceSpan } from '../../src/runtime/trace/span';
import { KEEL, describeOutcome } from '../support/keelCli';
import { decodeExport, decodeJsonExport, startOtlpReceiver, type OtlpReceiver } from '../support/otlpReceiver';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { SECRETS } from '../support/secrets';
import { useTempDirs } from '../support/tempDir';

/**
 * A help desk that looks a booking up twice (the same call), fails to cancel it, and claims it
 * did: three flags. Its first turn states a confidence, in its text and in its arguments.
 */
const DESK_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a booking up.',
  args: z.object({ ref: z.string(), confidence: z.number().optional() }),
  effect: 'none',
  run: ({ ref }) => ({ ref, status: 'confirmed' }),
});

const cancel = defineTool({
  name: 'cancel',
  description: 'Cancels a booking.',
  args: z.object({ ref: z.string() }),
  effect: 'unsafe',
  run: () => {
    throw new Error('cancellations are closed');
  },
});

export default defineAgent({
  name: 'desk',
  instructions: 'Help with bookings.',
  model: scriptedModel([
    { text: 'Looking it up; I am 90% sure it exists.', toolCalls: [{ name: 'lookup', args: { ref: 'AB1234', confidence: 0.9 } }] },
    { toolCalls: [{ name: 'lookup', args: { ref: 'AB1234', confidence: 0.9 } }] },
    { toolCalls: [{ name: 'cancel', args: { ref: 'AB1234' } }] },
    'All done: booking AB1234 is cancelled.',
  ]),
  tools: [lookup, cancel],
  requiredTools: ['cancel'],
});
`;

/** Answers with what it was told, secrets included, after passing them to a tool. */
const LEAKY_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const store = defineTool({
  name: 'store_secret',
  description: 'Stores a secret.',
  args: z.object({ password: z.string(), key: z.string() }),
  effect: 'none',
  run: ({ key }) => 'stored ' + key,
});

export default defineAgent({
  name: 'leaky',
  instructions: 'Repeat.',
  model: scriptedModel((context) =>
    context.turn === 0
      ? { text: 'Storing ' + context.input, toolCalls: [{ name: 'store_secret', args: { password: ${JSON.stringify(SECRETS.password)}, key: ${JSON.stringify(SECRETS.openai)} } }] }
      : 'You said: ' + context.input,
  ),
  tools: [store],
});
`;

describe('keel export, keel audit and flags in keel show (real processes)', () => {
  const tempDir = useTempDirs();
  let cwd: string;
  let db: string;
  let receiver: OtlpReceiver;

  before(() => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  });

  beforeEach(async () => {
    cwd = tempDir('keel-trace-cli-');
    db = join(cwd, 'runs.db');
    receiver = await startOtlpReceiver();
  });
  afterEach(() => receiver.close());

  function keel(args: readonly string[], extra: Readonly<Record<string, string>> = {}): Promise<Finished> {
    return runNode(KEEL, [...args, '--db', db], { cwd, env: testEnv(extra) });
  }

  async function runAgent(source: string, input: string, extra: Readonly<Record<string, string>> = {}): Promise<{ runId: string; result: Finished }> {
    const file = join(cwd, 'agent.agent.ts');
    writeFileSync(file, source);
    const result = await keel(['run', file, '--input', input, '--json'], extra);
    assert.ok(result.code === 0 || result.code === 1, describeOutcome(result));
    return { runId: (JSON.parse(result.stdout) as { run: { id: string } }).run.id, result };
  }

  it('exports a run as OTLP/JSON (to stdout or a file) and as one span per line', async () => {
    const { runId } = await runAgent(DESK_AGENT, 'Cancel AB1234');

    const otlp = await keel(['export', runId]);
    assert.equal(otlp.code, 0, describeOutcome(otlp));
    const decoded = decodeJsonExport(otlp.stdout);
    assert.deepEqual(
      decoded.spans.map((span) => span.name),
      [
        'invoke_agent desk',
        'chat scripted',
        'execute_tool lookup',
        'chat scripted',
        'execute_tool lookup',
        'chat scripted',
        'execute_tool cancel',
        'execute_tool cancel attempt 1',
        'chat scripted',
      ],
    );
    assert.equal(decoded.spans[0]?.attributes['gen_ai.conversation.id'], runId);
    assert.equal(decoded.resource['service.name'], 'keel');

    const jsonl = await keel(['export', runId.slice(0, 12), '--format', 'jsonl']);
    assert.equal(jsonl.code, 0, describeOutcome(jsonl));
    const spans = jsonl.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as TraceSpan);
    assert.equal(spans.length, 9);
    assert.deepEqual(spans.map((span) => span.spanId), decoded.spans.map((span) => span.spanId));
    assert.equal(spans[0]?.attributes['gen_ai.input.messages'], undefined, 'no content unless asked');

    const out = join(cwd, 'trace.json');
    const written = await keel(['export', runId, '--out', out, '--content']);
    assert.equal(written.code, 0, describeOutcome(written));
    assert.equal(written.stdout, '');
    const withContent = decodeJsonExport(readFileSync(out, 'utf8'));
    assert.match(String(withContent.spans[0]?.attributes['gen_ai.input.messages']), /Cancel AB1234/);

    const bad = await keel(['export', runId, '--format', 'xml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format must be otlp-json or jsonl/);
  });

  it("keeps a tool's thrown error with its class and stack: in keel show --json and as the span's exception event", async () => {
    const { runId } = await runAgent(DESK_AGENT.replace("throw new Error('cancellations are closed')", "throw new RangeError('cancellations are closed')"), 'Cancel AB1234');
    const shown = await keel(['show', runId, '--json']);
    assert.equal(shown.code, 0, describeOutcome(shown));
    const failed = (JSON.parse(shown.stdout) as { steps: { name: string; status: string; error: string; output: { exception?: { type: string; stacktrace: string } } }[] }).steps.find(
      (step) => step.name === 'cancel',
    );
    assert.equal(failed?.status, 'failed');
    assert.equal(failed?.output.exception?.type, 'RangeError');
    assert.match(failed?.output.exception?.stacktrace ?? '', /^\s+at .*agent\.agent\.ts:\d+:\d+/, 'the frames; the message is the step error');
    assert.match(failed?.error ?? '', /cancellations are closed/);

    const exported = await keel(['export', runId, '--format', 'jsonl']);
    const span = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as TraceSpan).find((candidate) => candidate.name === 'execute_tool cancel');
    assert.deepEqual(span?.events.map((event) => [event.name, event.attributes['exception.type'], event.attributes['exception.message']]), [
      ['exception', 'RangeError', failed?.error],
    ]);
    assert.equal(span?.events[0]?.attributes['exception.stacktrace'], failed?.output.exception?.stacktrace);
  });

  it('sends a run to an OTLP endpoint on request, taking a base URL as OTEL_EXPORTER_OTLP_ENDPOINT does', async () => {
    const { runId } = await runAgent(DESK_AGENT, 'Cancel AB1234');
    const sent = await keel(['export', runId, '--endpoint', receiver.url]);
    assert.equal(sent.code, 0, describeOutcome(sent));
    assert.match(sent.stdout, /sent 9 spans of run_\w+ to http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(request.path, '/v1/traces');
    assert.equal(request.headers['content-type'], 'application/x-protobuf');
    assert.equal(decodeExport(request).spans.length, 9);
  });

  it('exports the trace when a run ends, if OTEL_EXPORTER_OTLP_ENDPOINT is set', async () => {
    const { runId, result } = await runAgent(DESK_AGENT, 'Cancel AB1234', {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-langfuse-project=desk',
    });
    assert.match(result.stderr, /exported the trace of run run_\w+ to http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(request.headers['x-langfuse-project'], 'desk');
    const decoded = decodeExport(request);
    assert.equal(decoded.spans[0]?.attributes['gen_ai.conversation.id'], runId);
    assert.deepEqual(decoded.spans[0]?.attributes['keel.flags'], ['missing_required_tool']);

    receiver.respondWith(503);
    const failed = await runAgent(DESK_AGENT, 'Cancel AB1234', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`, OTEL_EXPORTER_OTLP_TIMEOUT: '2000' });
    assert.equal(failed.result.code, 0, 'a failed export does not change the exit code');
    assert.match(failed.result.stderr, /could not export the trace/);
  });

  it('lists the flags in keel show, as text and as JSON', async () => {
    const { runId } = await runAgent(DESK_AGENT, 'Cancel AB1234');
    const shown = await keel(['show', runId]);
    assert.equal(shown.code, 0, describeOutcome(shown));
    assert.match(shown.stdout, /^Flags$/m);
    assert.match(shown.stdout, /⚑ run missing_required_tool: The run ended completed without a successful call of cancel/);
    assert.match(shown.stdout, /⚑ step 4 repeated_call: lookup was called again with the same arguments as at step 2/);
    assert.match(shown.stdout, /⚑ step 6 ignored_tool_error: cancel failed at step 6/);

    const json = await keel(['show', runId, '--json']);
    const { flags } = JSON.parse(json.stdout) as { flags: Flag[] };
    assert.deepEqual(flags.map((flag) => flag.kind).sort(), ['ignored_tool_error', 'missing_required_tool', 'repeated_call']);
  });

  it('keeps the audit log of each decision: offered, selected, reasoning, confidence, outcome; across runs and by tool', async () => {
    const desk = await runAgent(DESK_AGENT, 'Cancel AB1234');
    await runAgent(LEAKY_AGENT, 'hello');

    const all = await keel(['audit', '--json']);
    assert.equal(all.code, 0, describeOutcome(all));
    const decisions = JSON.parse(all.stdout) as AuditDecision[];
    assert.deepEqual(
      decisions.map((decision) => [decision.agent, decision.seq, decision.kind]),
      [
        ['desk', 1, 'tool_calls'],
        ['desk', 3, 'tool_calls'],
        ['desk', 5, 'tool_calls'],
        ['desk', 7, 'answer'],
        ['leaky', 1, 'tool_calls'],
        ['leaky', 3, 'answer'],
      ],
    );
    const [first, , cancel, answer] = decisions;
    assert.deepEqual(first?.offered, ['lookup', 'cancel']);
    assert.equal(first?.reasoning, 'Looking it up; I am 90% sure it exists.');
    assert.equal(first?.confidence, '90%');
    assert.deepEqual(first?.calls.map((call) => [call.tool, call.confidence, call.outcome, call.seq]), [['lookup', 0.9, 'ok', 2]]);
    assert.deepEqual(cancel?.calls.map((call) => [call.tool, call.outcome, call.error]), [['cancel', 'error', 'cancel failed: cancellations are closed']]);
    assert.equal(answer?.answer, 'All done: booking AB1234 is cancelled.');

    const byTool = await keel(['audit', '--tool', 'cancel', '--json']);
    assert.deepEqual((JSON.parse(byTool.stdout) as AuditDecision[]).map((decision) => [decision.runId, decision.seq]), [[desk.runId, 5]]);

    const text = await keel(['audit', desk.runId]);
    assert.equal(text.code, 0, describeOutcome(text));
    assert.match(text.stdout, /offered +lookup, cancel/);
    assert.match(text.stdout, /selected lookup\(ref: "AB1234", confidence: 0\.9\) → ok/);
    assert.match(text.stdout, /selected cancel\(ref: "AB1234"\) → error: cancel failed: cancellations are closed/);
    assert.match(text.stdout, /reasoning "Looking it up; I am 90% sure it exists\."/);
    assert.match(text.stdout, /confidence 90%/);
    assert.match(text.stdout, /answered "All done: booking AB1234 is cancelled\."/);
    const none = await keel(['audit', '--tool', 'refund']);
    assert.equal(none.stdout, 'No decision selected refund.\n');
  });

  it('redacts keys and configured secrets in everything show, export and audit print', async () => {
    const env = { KEEL_REDACT: 'ACME-\\d{6}', LEGACY_API_TOKEN: SECRETS.fromEnv };
    const { runId } = await runAgent(LEAKY_AGENT, `my key ${SECRETS.openai}, account ${SECRETS.custom}, token ${SECRETS.fromEnv}, ${SECRETS.aws}`, env);
    const outputs = await Promise.all([
      keel(['show', runId], env),
      keel(['show', runId, '--json'], env),
      keel(['export', runId, '--content'], env),
      keel(['export', runId, '--format', 'jsonl', '--content'], env),
      keel(['audit', runId], env),
      keel(['audit', '--json'], env),
    ]);
    for (const output of outputs) {
      assert.equal(output.code, 0, describeOutcome(output));
      for (const [name, secret] of Object.entries(SECRETS)) {
        assert.ok(!output.stdout.includes(secret), `the ${name} secret leaked:\n${output.stdout}`);
      }
      assert.ok(output.stdout.includes('[REDACTED]'), output.stdout);
    }
  });
});
