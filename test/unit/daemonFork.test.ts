import assert from 'node:assert/strict';
import { KEEL } from '../support/keelCli';
import { runNode } from '../support/processes';
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

  it('forks a run at a step with an edited tool result, runs the fork on from there, and compares it with the original (compareRuns and keel diff)', async () => {
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

    const comparison = await daemon.request('compareRuns', { runA: runId, runB: fork.runId });
    assert.equal(comparison.first?.difference.aspect, 'result', comparison.first?.text);
    assert.deepEqual([comparison.rows[comparison.first.row ?? -1]?.a?.seq, comparison.rows[comparison.first.row ?? -1]?.b?.seq], [2, 2], 'the first difference is the edited step');
    assert.ok(comparison.rows.slice(0, comparison.first.row ?? 0).every((row) => row.differences.length === 0), 'the copied steps before it are the same');
    await assert.rejects(daemon.request('compareRuns', { runA: runId, runB: runId }), /Pick two different runs/);
    await assert.rejects(daemon.request('compareRuns', { runA: runId, runB: 'run_nope' }), /No run run_nope/);

    const diff = await runNode(KEEL, ['diff', runId, fork.runId], { cwd: workspace });
    assert.equal(diff.code, 1, `keel diff exits 1 when the runs differ: ${diff.stderr}`);
    assert.match(diff.stdout, /First difference The tool returned something different at step 2 \/ 2\./);
    assert.match(diff.stdout, /^ {2}B \{"value":999\}$/m);
    const same = await runNode(KEEL, ['diff', runId, runId], { cwd: workspace });
    assert.equal(same.code, 2, 'a run against itself is a usage error, not a difference');
    assert.match(same.stderr, /Pick two different runs to compare/);

    await assert.rejects(daemon.request('forkRun', { runId, seq: 99 }), /has no step 99/);
    await assert.rejects(daemon.request('forkRun', { runId, seq: 2, document: '{ "nope": 1 }' }), /Give the tool's "result"/);
  });
});
