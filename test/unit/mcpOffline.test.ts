import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineAgent } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { cassettePathFor, readCassette } from '../../src/runtime/golden/cassette';
import { runGoldenFile } from '../../src/runtime/golden/runGolden';
import { Host } from '../../src/runtime/host/host';
import { McpManager } from '../../src/runtime/mcp/mcpManager';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { loadRecording } from '../../src/runtime/replay/recording';
import { reexecuteRecording } from '../../src/runtime/replay/recordingStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { FIXTURE_SERVER, fixtureFiles, loggedCalls, stdioFixture } from '../support/mcpFixture';
import { useTempDirs } from '../support/tempDir';

describe('MCP offline: replays and golden cassettes never start a server', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();

  it('re-executes a recorded MCP run from what it pinned, with no server', async () => {
    const dir = tempDir('keel-mcp-replay-');
    const files = fixtureFiles(dir);
    const store = openSqliteStore(join(dir, 'keel.db'));
    const manager = new McpManager();
    try {
      const agent = defineAgent({
        name: 'mcp-replay',
        instructions: 'Look it up.',
        model: scriptedModel([{ toolCalls: [{ name: 'lookup', args: { id: 'c9' } }] }, 'Found.']),
        mcp: { servers: { fixture: stdioFixture(files) } },
      });
      const record = await (await new Runtime({ store, mcp: manager }).start(agent, { input: 'find c9' })).done;
      assert.equal(record.state, 'completed', record.error ?? '');
      await manager.close();
      rmSync(files.pidFile);
      const report = await reexecuteRecording(await loadRecording(store, record.id), agent, { beforeStep: () => undefined });
      assert.equal(report.end?.state, 'completed', report.end?.error ?? '');
      assert.equal(existsSync(files.pidFile), false, 'no server was started');
      assert.equal(loggedCalls(files).length, 1);
    } finally {
      await manager.close();
      await store.close();
    }
  });

  it('records what MCP servers offered and answered in a golden case’s cassette and replays it offline', async () => {
    const dir = tempDir('keel-mcp-golden-');
    const files = fixtureFiles(dir);
    const agentFile = join(dir, 'lookup.agent.ts');
    const writeAgent = (command: string) =>
      writeFileSync(
        agentFile,
        `import { defineAgent, scriptedModel } from 'keel-agents';
export default defineAgent({
  name: 'lookup',
  instructions: 'Look customers up.',
  model: scriptedModel((c) => (c.turn === 0 ? { toolCalls: [{ name: 'lookup', args: { id: 'c3' } }] } : 'It is ' + c.toolResults[0].content)),
  mcp: { servers: { fixture: { command: ${JSON.stringify(command)}, args: [${JSON.stringify(FIXTURE_SERVER)}], env: { MCP_FIXTURE_LOG: ${JSON.stringify(files.log)} } } } },
});
`,
      );
    writeAgent(process.execPath);
    const golden = join(dir, 'lookup.golden.yaml');
    writeFileSync(
      golden,
      `version: 1\nagent: ./lookup.agent.ts\ncases:\n  - name: finds ada\n    tags: [happy]\n    input: who is c3?\n    expect:\n      answer: { contains: [Ada Lovelace] }\n      tools: { called: [lookup] }\n`,
    );
    const manager = new McpManager();
    const store = openSqliteStore(':memory:');
    const { runtime } = await Host.open({ cwd: dir, store });
    try {
      const recorded = await runGoldenFile(golden, { store, mode: 'record', runtime, mcp: manager });
      assert.equal(recorded.cases[0]?.status, 'passed', JSON.stringify(recorded.cases[0]?.runs[0]));
      const cassette = readCassette(cassettePathFor(golden));
      const entry = cassette?.cases['finds ada'];
      assert.deepEqual(entry?.mcp?.calls.map((call) => [call.server, call.tool, call.arguments]), [['fixture', 'lookup', { id: 'c3' }]]);
      assert.equal(entry?.mcp?.servers['fixture']?.server.info.name, 'keel-fixture');
      await manager.close();

      // Offline: the server's command no longer exists, and nothing reaches it.
      writeAgent(join(dir, 'no-such-server'));
      const replayed = await runGoldenFile(golden, { store, mode: 'replay', runtime });
      assert.equal(replayed.cases[0]?.status, 'passed', JSON.stringify(replayed.cases[0]?.runs[0]));
      assert.equal(loggedCalls(files).length, 1, 'the replay called no server');

      // An agent that now takes its tools from another server: the cassette says so, and how to record it again.
      writeFileSync(agentFile, readFileSync(agentFile, 'utf8').replace('servers: { fixture:', 'servers: { other:'));
      const mismatched = await runGoldenFile(golden, { store, mode: 'replay', runtime });
      const run = mismatched.cases[0]?.runs[0];
      assert.equal(run?.status, 'error');
      assert.match(run?.mismatch ?? '', /the cassette holds no MCP server other\.\nRe-record it: keel record .*lookup\.golden\.yaml --case 'finds ada'/);
    } finally {
      await manager.close();
      await store.close();
    }
  });
});
