import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonNotifications, DaemonRequests } from '../../src/protocol/daemon';
import { RpcPeer } from '../../src/protocol/jsonRpc';
import type { RunEvent } from '../../src/runtime/agent/events';
import { decodeExport, startOtlpReceiver, type OtlpReceiver } from '../support/otlpReceiver';
import { REPO_ROOT, spawnNode, testEnv, within, type NodeProcess } from '../support/processes';
import { SECRETS } from '../support/secrets';
import { useTempDirs } from '../support/tempDir';

const DAEMON = join(REPO_ROOT, 'dist', 'daemon.js');

/** Calls a tool twice with the same arguments (one flag), with a secret in its answer. */
const REPEATING_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const ping = defineTool({ name: 'ping', description: 'Pongs.', args: z.object({ n: z.number() }), effect: 'none', run: () => 'pong' });

export default defineAgent({
  name: 'pinger',
  instructions: 'Ping.',
  model: scriptedModel([
    { toolCalls: [{ name: 'ping', args: { n: 1 } }] },
    { toolCalls: [{ name: 'ping', args: { n: 1 } }] },
    'Pinged twice with ${SECRETS.openai}.',
  ]),
  tools: [ping],
  requiredTools: ['ping'],
});
`;

/** The runtime process, spoken to as the extension does. */
class Daemon {
  readonly proc: NodeProcess;
  readonly events: RunEvent[] = [];
  private readonly peer: RpcPeer<Record<never, never>, DaemonRequests, DaemonNotifications, Record<never, never>>;

  constructor(workspace: string, env: Readonly<Record<string, string>>) {
    this.proc = spawnNode(DAEMON, [], { cwd: workspace, env: testEnv(env) });
    this.peer = new RpcPeer((line) => this.proc.child.stdin.write(line), {});
    this.peer.onNotification((method, params) => {
      if (method === 'runEvent') this.events.push(params);
    });
    this.proc.child.stdout.on('data', (chunk: string) => this.peer.receive(chunk));
    void this.proc.exited.then(() => this.peer.close(`the runtime process exited; stderr:\n${this.proc.stderr()}`));
  }

  request<M extends keyof DaemonRequests & string>(method: M, params: DaemonRequests[M]['params']): Promise<DaemonRequests[M]['result']> {
    return within(this.peer.request(method, params), `an answer to ${method}`);
  }

  async stop(): Promise<void> {
    if (this.proc.child.exitCode === null) this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }
}

describe('traces in the runtime process: getTrace, getFlagCounts, export when a run ends', () => {
  const tempDir = useTempDirs();
  let receiver: OtlpReceiver;
  let daemon: Daemon | undefined;

  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await receiver.close();
  });

  it('answers getTrace with redacted, flagged spans, counts flags per run, and exports each ended run', async () => {
    const workspace = tempDir('keel-daemon-trace-');
    const agentFile = join(workspace, 'pinger.agent.ts');
    writeFileSync(agentFile, REPEATING_AGENT);
    daemon = new Daemon(workspace, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    await daemon.request('initialize', { workspaceRoot: workspace, settings: { 'keel.trace.captureContent': true } });

    const { runId } = await daemon.request('startRun', { agentFile, input: 'ping' });
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(request.headers['content-type'], 'application/x-protobuf');
    const exported = decodeExport(request);
    assert.equal(exported.spans[0]?.attributes['gen_ai.conversation.id'], runId);
    assert.ok(!request.body.toString('latin1').includes(SECRETS.openai), 'the export is redacted');
    await within(
      (async () => {
        while (!daemon.proc.stderr().includes(`exported the trace of run ${runId}`)) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      'the export being logged',
    );

    const { spans } = await daemon.request('getTrace', { runId });
    assert.deepEqual(
      spans.map((span) => span.name),
      ['invoke_agent pinger', 'chat scripted', 'execute_tool ping', 'chat scripted', 'execute_tool ping', 'chat scripted'],
    );
    assert.deepEqual(spans[4]?.flags.map((flag) => flag.kind), ['repeated_call']);
    assert.match(String(spans[0]?.attributes['gen_ai.output.messages']), /Pinged twice with \[REDACTED\]/);
    assert.ok(!JSON.stringify(spans).includes(SECRETS.openai));

    const { counts } = await daemon.request('getFlagCounts', { runIds: [runId, 'run_unknown'] });
    assert.deepEqual(counts, { [runId]: 1 });
  });

  it('shows content in the editor’s traces by default, redacted, without sending it to the collector; keel.config.ts turns it off', async () => {
    const workspace = tempDir('keel-daemon-content-');
    const agentFile = join(workspace, 'pinger.agent.ts');
    writeFileSync(agentFile, REPEATING_AGENT);
    daemon = new Daemon(workspace, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    await daemon.request('initialize', { workspaceRoot: workspace });
    const { runId } = await daemon.request('startRun', { agentFile, input: 'ping' });
    const [request] = await receiver.waitForRequests(1);
    assert.ok(request);
    assert.equal(decodeExport(request).spans[0]?.attributes['gen_ai.output.messages'], undefined, 'content recorded by default stays in the editor');
    const shown = await daemon.request('getTrace', { runId });
    assert.equal(shown.contentRecorded, true);
    assert.match(String(shown.spans[0]?.attributes['gen_ai.output.messages']), /Pinged twice with \[REDACTED\]/);
    assert.equal(shown.spans[2]?.attributes['gen_ai.tool.call.arguments'], '{"n":1}');
    await daemon.stop();

    writeFileSync(join(workspace, 'keel.config.ts'), 'export default { trace: { captureContent: false } };\n');
    daemon = new Daemon(workspace, {});
    await daemon.request('initialize', { workspaceRoot: workspace });
    const hidden = await daemon.request('getTrace', { runId });
    assert.equal(hidden.contentRecorded, false);
    assert.ok(hidden.spans.every((span) => !('gen_ai.output.messages' in span.attributes) && !('gen_ai.tool.call.arguments' in span.attributes)));
  });
});
