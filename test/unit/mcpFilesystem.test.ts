import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineAgent } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { approvals } from '../../src/runtime/approval/policy';
import { decide } from '../../src/runtime/approval/decide';
import { McpManager } from '../../src/runtime/mcp/mcpManager';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { REPO_ROOT } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

/** The filesystem server from npm (@modelcontextprotocol/server-filesystem), as the worked example in docs/mcp.md uses it. */
const FILESYSTEM_SERVER = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

describe('MCP with the real filesystem server on a temporary folder', function () {
  this.timeout(90_000);
  const tempDir = useTempDirs();

  it('reads notes as untrusted documents, and writes a file only after a person approves', async () => {
    const dir = tempDir('keel-mcp-fs-');
    const notes = join(dir, 'notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'todo.txt'), 'Buy milk.\nCall Ada about the invoice.\n');
    const store = openSqliteStore(join(dir, 'keel.db'));
    const manager = new McpManager();
    const agent = defineAgent({
      name: 'notes',
      instructions: 'Keep the notes folder tidy.',
      model: scriptedModel((context) => {
        if (context.turn === 0) return { toolCalls: [{ name: 'read_text_file', args: { path: join(notes, 'todo.txt') } }] };
        if (context.turn === 1) return { toolCalls: [{ name: 'write_file', args: { path: join(notes, 'done.txt'), content: 'Bought milk.' } }] };
        return 'Noted.';
      }),
      mcp: {
        servers: { fs: { command: process.execPath, args: [FILESYSTEM_SERVER, '${workspaceFolder}/notes'] } },
        tools: { allow: ['read_text_file', 'write_file', 'list_directory'], channels: { 'fs/*': 'document' }, effects: { 'fs/write_file': 'unsafe' } },
      },
      approval: approvals.irreversible(),
    });
    try {
      const runtime = new Runtime({ store, mcp: manager });
      const paused = await (await runtime.start(agent, { input: 'Mark the milk as bought.', agentFile: join(dir, 'notes.agent.ts') })).done;
      assert.equal(paused.state, 'waiting_approval', paused.error ?? '');
      assert.deepEqual(Object.keys(paused.agentFacts?.mcp?.['fs']?.tools ?? {}).sort(), ['list_directory', 'read_text_file', 'write_file']);
      assert.equal(paused.agentFacts?.mcp?.['fs']?.info.name, 'secure-filesystem-server');
      const [read] = (await store.getSteps(paused.id)).filter((step) => step.kind === 'tool');
      const output = read?.output as { content: string; channel: string };
      assert.equal(output.content, 'Buy milk.\nCall Ada about the invoice.\n');
      assert.equal(output.channel, 'document');

      const [approval] = await store.listApprovals({ runId: paused.id, status: 'pending' });
      assert.equal(approval?.tool, 'write_file');
      await decide(store, approval!.id, { action: 'approve', argsHash: approval!.argsHash }, { by: 'ada', via: 'cli', at: Date.now() });
      const done = await (await runtime.resume(agent, paused.id)).done;
      assert.equal(done.state, 'completed', done.error ?? '');
      assert.equal(readFileSync(join(notes, 'done.txt'), 'utf8'), 'Bought milk.');

      const outside = defineAgent({
        name: 'outside',
        instructions: '',
        model: scriptedModel([{ toolCalls: [{ name: 'read_text_file', args: { path: '/etc/passwd' } }] }, 'Could not.']),
        mcp: { servers: { fs: { command: process.execPath, args: [FILESYSTEM_SERVER, notes] } }, tools: { allow: ['read_text_file'] } },
      });
      const refused = await (await runtime.start(outside, { input: 'read /etc/passwd' })).done;
      const [step] = (await store.getSteps(refused.id)).filter((candidate) => candidate.kind === 'tool');
      assert.match(step?.error ?? '', /^read_text_file failed: .*(outside allowed directories|Access denied)/);
    } finally {
      await manager.close();
      await store.close();
    }
  });
});
