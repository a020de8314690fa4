import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRecord, EffectRecord, RunRecord } from '../../src/runtime/store/checkpointStore';
import { bookingAgent, bookings } from '../support/approvalAgent';
import { REPO_ROOT, runNode, testEnv } from '../support/processes';
import { DAEMON, RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');

describe('an approval outlives the runtime process that asked for it', () => {
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  before(() => assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests'));
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((proc) => proc.kill()));
  });

  async function runtimeProcess(dir: string): Promise<RuntimeProcess> {
    const proc = new RuntimeProcess(dir);
    processes.push(proc);
    await proc.initialize();
    return proc;
  }

  function keel(dir: string, args: readonly string[]) {
    return runNode(KEEL, args, { cwd: dir, env: testEnv({ NO_COLOR: '1' }) });
  }

  it('SIGKILLed while a run waits, then approved from the CLI: the run completes and the booking happens exactly once', async () => {
    const dir = tempDir('keel-durable-approval-');
    const agentFile = bookingAgent(dir);
    const first = await runtimeProcess(dir);
    const { runId } = await first.request('startRun', { agentFile, input: 'book' });
    const approval = await first.approvalRequested(runId);
    await first.stopped(runId, 'waiting_approval');
    assert.deepEqual(bookings(dir), [], 'nothing was booked before the decision');
    await first.kill();

    const listed = await keel(dir, ['approvals', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as ApprovalRecord[]).map((pending) => pending.id),
      [approval.id],
      'the pending approval survived its process',
    );

    const approved = await keel(dir, ['approve', approval.id]);
    assert.equal(approved.code, 0, `keel approve failed:\n${approved.stdout}\n${approved.stderr}`);
    assert.match(approved.stdout, /Done: booked \$500/);
    assert.deepEqual(bookings(dir), [`${runId}:1:0 500`], 'the booking ran once, with its idempotency key');

    // A runtime process starting afterwards (a window reload) finds nothing to do again.
    const second = await runtimeProcess(dir);
    const { run } = await second.request('getRun', { runId });
    assert.equal(run.state, 'completed');
    const again = await keel(dir, ['approve', approval.id]);
    assert.notEqual(again.code, 0, 'a second decision was accepted');
    assert.match(again.stderr + again.stdout, /already decided/);

    const shown = await keel(dir, ['show', runId, '--json']);
    const snapshot = JSON.parse(shown.stdout) as { run: RunRecord; effects: EffectRecord[]; approvals: ApprovalRecord[] };
    assert.equal(snapshot.run.state, 'completed');
    assert.equal(snapshot.run.result, 'Done: booked $500');
    assert.deepEqual(
      snapshot.effects.map((effect) => [effect.tool, effect.status, effect.attempts]),
      [['book', 'completed', 1]],
    );
    assert.deepEqual(
      snapshot.approvals.map((decided) => [decided.id, decided.status, decided.decidedVia]),
      [[approval.id, 'decided', 'cli']],
    );
    assert.equal(bookings(dir).length, 1, 'the booking ran once');
  });
});
