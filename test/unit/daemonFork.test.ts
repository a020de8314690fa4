import assert from 'node:assert/strict';
import { RuntimeProcess } from '../support/runtimeProcess';
import { writeReplayAgent } from '../support/replayAgentFile';
import { useTempDirs } from '../support/tempDir';

describe('the runtime process forking runs', () => {
  const tempDir = useTempDirs();
  let daemon: RuntimeProcess | undefined;

  afterEach(async () => {
    await daemon?.kill();
    daemon = undefined;
  });

  it('forks a run at a step with an edited tool result, and runs the fork on from there', async () => {
    const workspace = tempDir('keel-fork-');
    const agentFile = writeReplayAgent(workspace);
    daemon = new RuntimeProcess(workspace);
    await daemon.initialize();
    const { runId } = await daemon.request('startRun', { agentFile, input: 'go' });
    const original = await daemon.finished(runId);
    assert.equal(original.state, 'completed', original.error ?? '');

    const document = JSON.stringify({ result: { value: 999 } });
    const fork = await daemon.request('forkRun', { runId, seq: 2, document });
    assert.notEqual(fork.runId, runId);
    const forked = await daemon.finished(fork.runId);
    assert.equal(forked.state, 'completed', forked.error ?? '');
    const { steps } = await daemon.request('getRun', { runId: fork.runId });
    assert.deepEqual((steps[1]?.output as { value?: unknown }).value, { value: 999 });
    assert.equal(steps.length, 8, 'the copied steps, the edited one, then the rest run live');

    await assert.rejects(daemon.request('forkRun', { runId, seq: 99 }), /has no step 99/);
    await assert.rejects(daemon.request('forkRun', { runId, seq: 2, document: '{ "nope": 1 }' }), /Give the tool's "result"/);
  });
});
