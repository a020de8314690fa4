import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { RpcError } from '../../src/protocol/jsonRpc';
import { argsHash } from '../../src/runtime/approval/decide';
import { bookingAgent, bookings } from '../support/approvalAgent';
import { REPO_ROOT } from '../support/processes';
import { DAEMON, RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
const EARLIEST = 'Book the earliest flight from NYC to LIS on 2026-12-10';

describe('decisions through the runtime process (the editor’s path)', () => {
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  before(() => assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests'));
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((proc) => proc.kill()));
  });

  async function start(workspace = tempDir('keel-decide-')): Promise<RuntimeProcess> {
    const proc = new RuntimeProcess(workspace);
    processes.push(proc);
    await proc.initialize();
    return proc;
  }

  async function pausedTravel(proc: RuntimeProcess) {
    const { runId } = await proc.request('startRun', { agentFile: TRAVEL, input: EARLIEST });
    const paused = await proc.stopped(runId, 'waiting_approval');
    const approval = await proc.approvalRequested(runId);
    return { runId, paused, approval };
  }

  it('approves as the OS user via vscode, and the run goes on here to completion', async () => {
    const proc = await start();
    const { runId, approval } = await pausedTravel(proc);
    assert.equal(approval.summary, '$640 NYC→LIS');
    assert.equal(approval.reason, 'over $600');

    const { approval: decided, resumed } = await proc.request('decide', {
      approvalId: approval.id,
      request: { action: 'approve', argsHash: approval.argsHash },
    });
    assert.equal(resumed, true);
    assert.equal(decided.status, 'decided');
    assert.equal(decided.decidedVia, 'vscode');
    assert.equal(decided.decidedBy, userInfo().username);
    assert.deepEqual(decided.decision, { action: 'approve', argsHash: approval.argsHash });
    const done = await proc.stopped(runId, 'completed');
    assert.match(done.result ?? '', /^Booked KL642 for \$640\. Confirmation KEEL-KL642-/);
  });

  it('runs approved edited arguments, named by their own hash', async () => {
    const proc = await start();
    const { runId, approval } = await pausedTravel(proc);
    const edited = { ...(approval.args as Record<string, unknown>), flightId: 'UA66', price: 598 };
    const { approval: decided } = await proc.request('decide', {
      approvalId: approval.id,
      request: { action: 'approve', argsHash: argsHash(edited), args: edited },
    });
    assert.deepEqual(decided.decision, { action: 'approve', argsHash: argsHash(edited), args: edited });
    const done = await proc.stopped(runId, 'completed');
    assert.match(done.result ?? '', /^Booked UA66 for \$598\./);
  });

  it('names edited arguments sent without a hash by theirs, as the editor sends them', async () => {
    const proc = await start();
    const { runId, approval } = await pausedTravel(proc);
    const edited = { ...(approval.args as Record<string, unknown>), flightId: 'UA66', price: 598 };
    const { approval: decided } = await proc.request('decide', { approvalId: approval.id, request: { action: 'approve', args: edited } });
    assert.deepEqual(decided.decision, { action: 'approve', argsHash: argsHash(edited), args: edited });
    const done = await proc.stopped(runId, 'completed');
    assert.match(done.result ?? '', /^Booked UA66 for \$598\./);
  });

  it('refuses an approval whose hash does not match the arguments, and decides nothing', async () => {
    const proc = await start();
    const { runId, approval } = await pausedTravel(proc);
    const other = { ...(approval.args as Record<string, unknown>), price: 6400 };
    for (const request of [
      { action: 'approve' as const, argsHash: argsHash(other) },
      { action: 'approve' as const, argsHash: approval.argsHash, args: other },
    ]) {
      const error = await rejection(proc.request('decide', { approvalId: approval.id, request }));
      assert.match(error.message, /nothing was decided/);
    }
    const [still] = await proc.request('listApprovals', { runId });
    assert.equal(still?.status, 'pending');
    assert.equal((await proc.request('getRun', { runId })).run.state, 'waiting_approval');
  });

  it('refuses what is not a decision', async () => {
    const proc = await start();
    const { approval } = await pausedTravel(proc);
    const malformed = [{ action: 'maybe' }, { action: 'approve', argsHash: 'abc' }, { action: 'approve' }, { action: 'reject' }, null];
    for (const request of malformed) {
      const error = await rejection(proc.request('decide', { approvalId: approval.id, request: request as never }));
      assert.match(error.message, /nothing was decided|needs a reason/);
    }
    assert.equal((await proc.request('listApprovals', { status: 'pending' })).length, 1);
  });

  it('passes a rejection to the model as the tool’s error', async () => {
    const proc = await start();
    const { runId, approval } = await pausedTravel(proc);
    await proc.request('decide', { approvalId: approval.id, request: { action: 'reject', reason: 'Too expensive; take UA66.' } });
    const done = await proc.stopped(runId, 'completed');
    assert.match(done.result ?? '', /^I could not finish: .*rejected this call: Too expensive; take UA66\.$/);
  });

  it('rejects an approval at its deadline on its own, and the run goes on with that', async () => {
    const dir = tempDir('keel-deadline-');
    const proc = await start(dir);
    const { runId } = await proc.request('startRun', { agentFile: bookingAgent(dir, 400), input: 'book' });
    await proc.stopped(runId, 'waiting_approval');
    const done = await proc.stopped(runId, 'completed', 10_000);
    assert.match(done.result ?? '', /^Not booked: .*No one approved this call in time/);
    const [approval] = await proc.request('listApprovals', { runId });
    assert.equal(approval?.status, 'expired');
    assert.equal(approval?.decidedVia, 'deadline');
    assert.deepEqual(bookings(dir), []);
  });

  it('applies deadlines that passed while no runtime process was running, as it starts', async () => {
    const dir = tempDir('keel-deadline-');
    const first = await start(dir);
    const { runId } = await first.request('startRun', { agentFile: bookingAgent(dir, 1500), input: 'book' });
    await first.stopped(runId, 'waiting_approval');
    await first.kill();
    await new Promise((resolve) => setTimeout(resolve, 1600));

    const second = await start(dir);
    const done = await second.stopped(runId, 'completed', 10_000);
    assert.match(done.result ?? '', /^Not booked: .*No one approved this call in time/);
    assert.deepEqual(bookings(dir), []);
  });
});

async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    return error;
  }
  assert.fail('the request succeeded');
}
