import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRecord } from '../../src/runtime/store/checkpointStore';
import { bookingAgent, bookings } from '../support/approvalAgent';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');
const REFUSED = "The edited arguments do not fit book's schema: `amount`: expected number, received string; nothing was decided.";

/** Edited approval arguments are checked against the tool's schema before the decision is recorded. */
describe('edited approval arguments that break the tool’s schema', () => {
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((proc) => proc.kill()));
  });

  function keel(dir: string, args: readonly string[]): Promise<Finished> {
    return runNode(KEEL, args, { cwd: dir, env: testEnv({ NO_COLOR: '1' }) });
  }

  async function pending(dir: string): Promise<ApprovalRecord[]> {
    const listed = await keel(dir, ['approvals', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    return JSON.parse(listed.stdout) as ApprovalRecord[];
  }

  it('keel approve --args refuses them in one sentence naming the field, records nothing, and takes a fixed edit', async () => {
    const dir = tempDir('keel-edited-args-');
    const started = await keel(dir, ['run', bookingAgent(dir), '--input', 'book']);
    const [approval] = await pending(dir);
    assert.ok(approval, `the run did not wait for an approval:\n${started.stdout}\n${started.stderr}`);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ amount: 'lots' }));
    const refused = await keel(dir, ['approve', approval.id, '--args', bad]);
    assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
    assert.equal(refused.stderr.trim(), `keel: ${REFUSED}`);
    assert.doesNotMatch(refused.stdout + refused.stderr, /invalid_type|"code"|    at /);
    assert.deepEqual((await pending(dir)).map((still) => [still.id, still.status]), [[approval.id, 'pending']]);
    assert.deepEqual(bookings(dir), []);

    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ amount: 300 }));
    const approved = await keel(dir, ['approve', approval.id, '--args', good]);
    assert.equal(approved.code, 0, `${approved.stdout}\n${approved.stderr}`);
    assert.match(approved.stdout, /booked \$300$/m);
    assert.equal(bookings(dir).length, 1);
  });

  it('the editor’s edit-then-approve (decide over the runtime process) refuses them the same way', async () => {
    const dir = tempDir('keel-edited-args-editor-');
    const proc = new RuntimeProcess(dir);
    processes.push(proc);
    await proc.initialize();
    const { runId } = await proc.request('startRun', { agentFile: bookingAgent(dir), input: 'book' });
    const approval = await proc.approvalRequested(runId);
    await proc.stopped(runId, 'waiting_approval');

    await assert.rejects(proc.request('decide', { approvalId: approval.id, request: { action: 'approve', args: { amount: 'lots' } } }), (error: Error) => {
      assert.equal(error.message, REFUSED);
      return true;
    });
    const [still] = await proc.request('listApprovals', { runId });
    assert.equal(still?.status, 'pending');
    assert.equal((await proc.request('getRun', { runId })).run.state, 'waiting_approval');
  });
});
