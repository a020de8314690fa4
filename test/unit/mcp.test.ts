import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineAgent, type Agent, type AgentConfig } from '../../src/runtime/agent/define';
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
  });
});
