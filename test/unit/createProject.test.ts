import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RpcError } from '../../src/protocol/jsonRpc';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

const CASSETTE = 'agents/__cassettes__/hello.golden.cassette.json';

/** Keel: Create Agent…'s request, answered by the built runtime process with keel init's code. */
describe('the runtime process creates a project as keel init does (Keel: Create Agent…)', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  afterEach(async () => {
    for (const proc of processes.splice(0)) await proc.kill();
  });

  async function started(dir: string, trusted: boolean): Promise<RuntimeProcess> {
    const proc = new RuntimeProcess(dir);
    processes.push(proc);
    await proc.request('initialize', { workspaceRoot: dir, trusted });
    return proc;
  }

  it('writes the project with its cassette recorded, then refuses a second time naming what exists, rewriting nothing', async () => {
    const dir = tempDir('keel-create-');
    const proc = await started(dir, true);
    const folder = join(dir, 'my agents');
    const project = await proc.request('createProject', { folder });
    assert.equal(project.agentFile, join(folder, 'agents', 'hello.agent.ts'));
    assert.ok(project.written.includes(CASSETTE), `no cassette among ${project.written.join(', ')}`);
    assert.equal(project.wrotePackageJson, true);
    assert.deepEqual(project.todo, []);
    for (const file of project.written) assert.ok(existsSync(join(folder, file)), `${file} is listed but missing`);

    const agentBefore = `${statSync(project.agentFile).mtimeMs} ${readFileSync(project.agentFile, 'utf8')}`;
    const refused = await proc.request('createProject', { folder }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof RpcError, `expected a refusal, got ${String(refused)}`);
    assert.match(refused.message, /already has .*agents\/hello\.agent\.ts.*keel init never overwrites a file, so it wrote nothing/);
    assert.equal(`${statSync(project.agentFile).mtimeMs} ${readFileSync(project.agentFile, 'utf8')}`, agentBefore);
  });

  it('in Restricted Mode writes the files but runs nothing: no cassette, and it says how to record one', async () => {
    const dir = tempDir('keel-create-untrusted-');
    const proc = await started(dir, false);
    const folder = join(dir, 'project');
    const project = await proc.request('createProject', { folder });
    assert.ok(existsSync(project.agentFile));
    assert.ok(!existsSync(join(folder, CASSETTE)), 'the cassette was recorded, which runs the agent');
    assert.ok(!project.written.includes(CASSETTE));
    assert.ok(
      project.todo.some((line) => line.includes('npx keel record agents/hello.golden.yaml')),
      `no hint to record the cassette: ${project.todo.join(' | ')}`,
    );
  });
});
