import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineAgent, defineTool, type Agent, type AgentConfig } from '../../src/runtime/agent/define';
import { approvals } from '../../src/runtime/approval/policy';
import { z } from 'zod';
import { mkdirSync, readFileSync } from 'node:fs';
import { withMcpTools } from '../../src/runtime/mcp/resolveTools';
import { Runtime } from '../../src/runtime/agent/runtime';
import { decide } from '../../src/runtime/approval/decide';
import { CircuitBreakers } from '../../src/runtime/effects/circuitBreaker';
import { McpManager, SERVER_BREAKER } from '../../src/runtime/mcp/mcpManager';
import type { McpServerConfig } from '../../src/runtime/mcp/mcpConfig';
import { McpDefinitionChangedError, McpFlaggedToolError } from '../../src/runtime/mcp/resolveTools';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { buildTrace, loadTraceSource } from '../../src/runtime/trace/buildTrace';
import { HttpFixture, fixtureFiles, isAlive, loggedCalls, stdioFixture, type FixtureFiles } from '../support/mcpFixture';
import { useTempDirs } from '../support/tempDir';
import { toStep } from '../../src/daemon/toProtocol';
import { stepRows } from '../../webview/run/model/runView';
import { spanDetails } from '../../webview/timeline/model/details';
import { until } from '../support/until';

describe('MCP tools through the runtime (the fixture server over stdio and Streamable HTTP)', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();
  let dir: string;
  let files: FixtureFiles;
  let store: SqliteStore;
  let manager: McpManager;
  let runtime: Runtime;

  beforeEach(() => {
    dir = tempDir('keel-mcp-');
    files = fixtureFiles(dir);
    store = openSqliteStore(join(dir, 'keel.db'));
    manager = new McpManager();
    runtime = new Runtime({ store, mcp: manager, sleep: () => Promise.resolve() });
  });

  afterEach(async () => {
    await manager.close();
    await store.close();
  });

  function agent(script: Script, server: McpServerConfig = stdioFixture(files), extra: Partial<AgentConfig> = {}): Agent {
    return defineAgent({
      name: 'mcp-user',
      instructions: 'Use the tools.',
      model: scriptedModel(script),
      mcp: { servers: { fixture: server }, tools: { deny: ['crash'] } },
      ...extra,
    });
  }

  async function run(target: Agent, input = 'go'): Promise<RunRecord> {
    return (await runtime.start(target, { input })).done;
  }

  function toolSteps(steps: readonly StepRecord[]): StepRecord[] {
    return steps.filter((step) => step.kind === 'tool');
  }

  it('calls a read-only tool, with the idempotency key and trace context in _meta, and records the MCP attributes on its span', async () => {
    const record = await run(agent([{ toolCalls: [{ name: 'lookup', args: { id: 'c42' } }] }, 'Found Ada.']));
    assert.equal(record.state, 'completed', record.error ?? '');
    const [step] = toolSteps(await store.getSteps(record.id));
    assert.equal(step?.status, 'completed');
    const output = step?.output as { content: string; channel: string; attributes: Record<string, unknown> };
    assert.match(output.content, /Customer c42: Ada Lovelace/);
    assert.equal(output.channel, 'tool_output', 'a closed-world tool is the agent’s own tool output');
    const [call] = loggedCalls(files);
    assert.equal(call?.meta?.['keel/idempotencyKey'], `${record.id}:1:0`);
    assert.match(String(call?.meta?.['traceparent']), new RegExp(`^00-${record.traceId}-[0-9a-f]{16}-01$`));

    const spans = buildTrace(await loadTraceSource(store, record.id));
    const span = spans.find((candidate) => candidate.name === 'execute_tool lookup');
    assert.ok(span);
    assert.equal(span.attributes['mcp.method.name'], 'tools/call');
    assert.equal(span.attributes['network.transport'], 'pipe');
    assert.equal(span.attributes['keel.mcp.server'], 'fixture');
    assert.match(String(span.attributes['mcp.protocol.version']), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(span.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(String(call?.meta?.['traceparent']).split('-')[2], span.spanId, 'the server sees the span of the call as its parent');

    // The Run view and the timeline's details name the server the tool came from.
    assert.equal(stepRows([toStep(step)])[0]?.server, 'fixture');
    assert.deepEqual(
      spanDetails(span, span.startTime, Date.now()).facts.find((fact) => fact.label === 'MCP server'),
      { label: 'MCP server', value: 'fixture' },
    );
  });

  it('gives a model that breaks the JSON Schema the same correctable error as a zod tool, then runs the corrected call', async () => {
    const own = defineTool({ name: 'own', description: 'A zod tool.', args: z.object({ id: z.string() }), effect: 'none', run: () => 'ok' });
    const script: Script = [
      { toolCalls: [{ name: 'lookup', args: { id: 42 } }, { name: 'own', args: { id: 42 } }] },
      { toolCalls: [{ name: 'lookup', args: { id: 'c7' } }] },
      'Done.',
    ];
    const record = await run(agent(script, stdioFixture(files), { tools: [own] }));
    assert.equal(record.state, 'completed', record.error ?? '');
    const [bad, zodBad, good] = toolSteps(await store.getSteps(record.id));
    assert.equal(bad?.status, 'failed');
    assert.match(bad?.error ?? '', /^Invalid arguments for lookup:\n✖ Invalid input: must be string\n {2}→ at id$/);
    assert.match(zodBad?.error ?? '', /^Invalid arguments for own:\n✖ Invalid input: expected string, received number\n {2}→ at id$/);
    assert.equal(good?.status, 'completed');
    assert.deepEqual(
      loggedCalls(files).map((call) => call.arguments),
      [{ id: 'c7' }],
      'the server never saw the broken call',
    );
  });

  it('takes effects and channels from annotations, lets the agent override them, and offers only allowed tools', async () => {
    const declared = defineAgent({
      name: 'mcp-user',
      instructions: '',
      model: scriptedModel(['ok']),
      mcp: { servers: { fixture: stdioFixture(files) }, tools: { allow: ['fixture/*'], deny: ['crash', 'sl*'], effects: { 'fixture/fetch_page': 'idempotent' } } },
    });
    const { agent: resolved, pin } = await withMcpTools(declared, { connections: manager, agentFile: null, screen: true });
    const facts = Object.fromEntries([...resolved.tools.values()].map((tool) => [tool.name, `${tool.effect}/${tool.channel}`]));
    assert.deepEqual(facts, {
      lookup: 'none/tool_output',
      upsert_note: 'idempotent/tool_output',
      send_payment: 'unsafe/tool_output',
      fetch_page: 'idempotent/document',
      fail: 'none/document',
      versioned: 'none/document',
    });
    assert.equal(pin?.['fixture']?.info.name, 'keel-fixture');
    assert.equal(pin?.['fixture']?.info.version, '1.4.2');
    assert.match(pin?.['fixture']?.tools['lookup']?.hash ?? '', /^[0-9a-f]{64}$/);
    const prefixed = defineAgent({ name: 'p', instructions: '', model: scriptedModel(['ok']), mcp: { servers: { fx: stdioFixture(files) }, prefix: true, tools: { allow: ['lookup'] } } });
    assert.deepEqual([...(await withMcpTools(prefixed, { connections: manager, agentFile: null, screen: true })).agent.tools.keys()], ['fx_lookup']);
  });

  it('lets the model read a tool error (isError) and go on, marking the span tool_error', async () => {
    const record = await run(agent([{ toolCalls: [{ name: 'fail', args: {} }] }, 'The ledger is locked.']));
    assert.equal(record.state, 'completed');
    const [step] = toolSteps(await store.getSteps(record.id));
    assert.equal(step?.error, 'fail failed: The ledger is locked for maintenance.');
    assert.deepEqual(step?.failedAttempts.map((attempt) => attempt.class), ['never'], 'a tool error is not retried');
    const span = buildTrace(await loadTraceSource(store, record.id)).find((candidate) => candidate.name === 'execute_tool fail');
    assert.equal(span?.attributes['error.type'], 'tool_error');
    assert.equal(span?.attributes['keel.mcp.server'], 'fixture', 'a failed call still names its server');
    assert.equal(step && stepRows([toStep(step)])[0]?.server, 'fixture');
  });

  it('fails a call that outlasts mcp.timeoutMs, retrying a read-only one', async () => {
    const slow = defineAgent({
      name: 'mcp-user',
      instructions: '',
      model: scriptedModel([{ toolCalls: [{ name: 'slow', args: { ms: 2000 } }] }, 'Too slow.']),
      mcp: { servers: { fixture: stdioFixture(files) }, timeoutMs: 150 },
    });
    const record = await run(slow);
    const [step] = toolSteps(await store.getSteps(record.id));
    assert.equal(step?.status, 'failed');
    assert.match(step?.error ?? '', /slow failed after 3 attempts: MCP server fixture did not answer within 150 ms/);
  });

  it('keeps a server warm between runs, starts it again after a crash, and leaves one that keeps crashing alone (its breaker)', async () => {
    let now = 1_000_000;
    await manager.close();
    manager = new McpManager({ breakers: new CircuitBreakers(SERVER_BREAKER, () => now) });
    runtime = new Runtime({ store, mcp: manager, sleep: () => Promise.resolve() });
    const lookup = (id: string) => agent([{ toolCalls: [{ name: 'lookup', args: { id } }] }, 'ok']);
    await run(lookup('c1'));
    await run(lookup('c2'));
    const [first, second] = loggedCalls(files);
    assert.equal(first?.pid, second?.pid, 'the second run used the warm server');

    const crashing = defineAgent({
      name: 'mcp-user',
      instructions: '',
      model: scriptedModel([{ toolCalls: [{ name: 'crash', args: {} }] }, 'It crashed.']),
      mcp: { servers: { fixture: stdioFixture(files) } },
    });
    const record = await run(crashing);
    const [step] = toolSteps(await store.getSteps(record.id));
    const pids = new Set(loggedCalls(files).filter((call) => call.name === 'crash').map((call) => call.pid));
    assert.equal(pids.size, 2, 'each crash was followed by a fresh server');
    assert.equal(record.state, 'failed');
    assert.match(record.error ?? '', /The circuit for MCP server fixture is open after 2 of 4 calls failed/);
    assert.match(step?.failedAttempts[0]?.error ?? '', /MCP server fixture stopped during the call \(its stderr ends: fixture: crashing on purpose\)/);
    now += SERVER_BREAKER.cooldownMs;
    assert.equal((await run(lookup('c3'))).state, 'completed', 'after the cooldown the server is started again');
  });

  it('asks a person about an unsafe call whose server died during it, and never repeats it on its own', async () => {
    const paying = agent([{ toolCalls: [{ name: 'send_payment', args: { to: 'acct-9', amount: 25, delayMs: 30_000 } }] }, 'Paid.']);
    const handle = await runtime.start(paying, { input: 'pay' });
    const pid = await until(() => (loggedCalls(files).some((call) => call.name === 'send_payment') ? Number(readFileSync(files.pidFile, 'utf8')) : undefined), 'the payment reaching the server');
    process.kill(pid, 'SIGKILL');
    const paused = await handle.done;
    assert.equal(paused.state, 'waiting_approval');
    const [approval] = await store.listApprovals({ runId: paused.id, status: 'pending' });
    assert.equal(approval?.kind, 'unknown_outcome');
    await decide(store, approval!.id, { action: 'done', result: 'Sent 25 to acct-9: confirmation P-525.' }, { by: 'ada', via: 'cli', at: Date.now() });
    const done = await (await runtime.resume(paying, paused.id)).done;
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.equal(loggedCalls(files).filter((call) => call.name === 'send_payment').length, 1, 'the server saw the payment exactly once');
  });

  it('never calls the server again for recorded steps when a paused run resumes', async () => {
    const paying = agent(
      [{ toolCalls: [{ name: 'lookup', args: { id: 'c1' } }] }, { toolCalls: [{ name: 'send_payment', args: { to: 'acct-1', amount: 5 } }] }, 'Paid.'],
      stdioFixture(files),
      { approval: approvals.irreversible() },
    );
    const paused = await run(paying);
    assert.equal(paused.state, 'waiting_approval');
    const [approval] = await store.listApprovals({ runId: paused.id, status: 'pending' });
    await decide(store, approval!.id, { action: 'approve', argsHash: approval!.argsHash }, { by: 'ada', via: 'cli', at: Date.now() });
    await manager.close();
    const done = await (await runtime.resume(paying, paused.id)).done;
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.deepEqual(loggedCalls(files).map((call) => call.name), ['lookup', 'send_payment']);
  });

  it('stops a resume whose pinned tool definition changed, naming the tool and what changed', async () => {
    writeFileSync(files.versionFile, '1');
    const paying = agent([{ toolCalls: [{ name: 'send_payment', args: { to: 'acct-1', amount: 5 } }] }, 'Paid.'], stdioFixture(files), { approval: approvals.irreversible() });
    const paused = await run(paying);
    assert.equal(paused.state, 'waiting_approval');
    writeFileSync(files.versionFile, '2');
    const [approval] = await store.listApprovals({ runId: paused.id, status: 'pending' });
    await decide(store, approval!.id, { action: 'approve', argsHash: approval!.argsHash }, { by: 'ada', via: 'cli', at: Date.now() });
    await assert.rejects(runtime.resume(paying, paused.id), (error: unknown) => {
      assert.ok(error instanceof McpDefinitionChangedError);
      assert.equal(
        error.message,
        'MCP server fixture changed since the run started: versioned changed: its description changed from "Answers with version 1." to "Answers with version 2."; its input schema changed (`verbose` added). The run goes on only with the tools it started with; restore them or start a new run.',
      );
      return true;
    });
    assert.equal((await store.getRun(paused.id))?.state, 'waiting_approval', 'the run is left as it was');
    writeFileSync(files.versionFile, '1');
    assert.equal((await (await runtime.resume(paying, paused.id)).done).state, 'completed');
  });

  it('refuses to start with a tool description that reads like an injection until a person accepts it, once', async () => {
    const poisoned = agent(['ok'], stdioFixture(files, ['--poisoned']));
    await assert.rejects(run(poisoned), (error: unknown) => {
      assert.ok(error instanceof McpFlaggedToolError);
      assert.match(error.message, /^The description of MCP tool fixture\/poisoned \(an instruction to ignore earlier instructions or rules: .*; hidden text with instructions in it: .*\) reads like a prompt injection\. .*--accept-mcp-tool fixture\/poisoned/);
      return true;
    });
    assert.deepEqual(await store.listRuns(), [], 'no run was recorded');
    manager.accept(['fixture/poisoned']);
    const accepted = await run(poisoned);
    assert.ok(accepted.agentFacts?.mcp?.['fixture']?.tools['poisoned']?.flagged?.some((finding) => finding.pattern === 'hidden_text'));
    const later = new Runtime({ store, mcp: new McpManager() });
    const again = await (await later.start(poisoned, { input: 'again' })).done;
    assert.equal(again.state, 'completed', 'a description accepted for an earlier run is not asked about again');
    await (later as unknown as { mcp: McpManager }).mcp.close();
  });

  it('reaches a Streamable HTTP server with a secret from the environment that the journal never holds, and reconnects after it restarts', async () => {
    const token = 's3cret-token-value';
    process.env['KEEL_TEST_MCP_TOKEN'] = token;
    let server = await HttpFixture.start(files, token);
    try {
      const declared = server.declaration('KEEL_TEST_MCP_TOKEN');
      const lookup = (id: string) => agent([{ toolCalls: [{ name: 'lookup', args: { id } }] }, 'ok'], declared);
      const first = await run(lookup('c1'));
      assert.equal(first.state, 'completed', first.error ?? '');
      const span = buildTrace(await loadTraceSource(store, first.id)).find((candidate) => candidate.name === 'execute_tool lookup');
      assert.equal(span?.attributes['network.transport'], 'tcp');
      assert.equal(span?.attributes['server.address'], '127.0.0.1');
      assert.equal(span?.attributes['server.port'], server.port);
      assert.match(String(span?.attributes['mcp.session.id']), /^[0-9a-f-]{36}$/);
      assert.doesNotMatch(readFileSync(join(dir, 'keel.db')).toString('latin1'), new RegExp(token));

      const port = server.port;
      await server.stop();
      server = await HttpFixture.start(files, token, port);
      const second = await run(lookup('c2'));
      assert.equal(second.state, 'completed', second.error ?? '');
      assert.deepEqual(loggedCalls(files).map((call) => call.arguments['id']), ['c1', 'c2']);
    } finally {
      delete process.env['KEEL_TEST_MCP_TOKEN'];
      await server.stop();
    }
  });

  it('names servers from the workspace’s .vscode/mcp.json (with comments), and says which variable is missing', async () => {
    mkdirSync(join(dir, '.vscode'));
    const entry = stdioFixture(files);
    writeFileSync(
      join(dir, '.vscode', 'mcp.json'),
      `{\n  // the test's server\n  "servers": {\n    "fixture": ${JSON.stringify({ ...entry, env: { ...entry.env, TOKEN: '${env:KEEL_TEST_MISSING}' } })},\n  },\n}\n`,
    );
    const fromWorkspace = defineAgent({ name: 'ws', instructions: '', model: scriptedModel([{ toolCalls: [{ name: 'lookup', args: { id: 'c5' } }] }, 'ok']), mcp: { servers: { fixture: 'workspace' } } });
    const agentFile = join(dir, 'ws.agent.ts');
    await assert.rejects(runtime.start(fromWorkspace, { input: 'go', agentFile }), {
      message: 'MCP server "fixture" needs the environment variable KEEL_TEST_MISSING (${env:KEEL_TEST_MISSING} in its env TOKEN), which is not set.',
    });
    process.env['KEEL_TEST_MISSING'] = 'here';
    try {
      const record = await (await runtime.start(fromWorkspace, { input: 'go', agentFile })).done;
      assert.equal(record.state, 'completed', record.error ?? '');
    } finally {
      delete process.env['KEEL_TEST_MISSING'];
    }
  });

  it('says in one sentence, with the tail of its stderr, why a server could not start', async () => {
    const broken = agent(['ok'], { command: process.execPath, args: ['-e', 'process.stderr.write("config file missing: /etc/fixture.toml\\n"); process.exit(2)'] });
    await assert.rejects(run(broken), {
      name: 'McpStartError',
      message: `MCP server fixture (${process.execPath}) could not be started: it exited with code 2; its stderr ends: config file missing: /etc/fixture.toml`,
    });
  });

  it('stops every server it started when it closes', async () => {
    await run(agent([{ toolCalls: [{ name: 'lookup', args: { id: 'c1' } }] }, 'ok']));
    const pid = Number(readFileSync(files.pidFile, 'utf8'));
    assert.ok(isAlive(pid));
    await manager.close();
    await until(() => (isAlive(pid) ? undefined : true), 'the server exiting');
  });
});
