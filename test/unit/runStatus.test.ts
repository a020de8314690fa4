import assert from 'node:assert/strict';
import { resolveCommand } from '../../src/extension/approvals/approvalText';
import { interruptedNotice, outcomeMessage, runDescription } from '../../src/extension/ui/runStatus';
import type { RunRecord, RunState } from '../../src/runtime/store/checkpointStore';
import { RUN_STATE_LABELS, isStopped } from '../../src/shared/runText';
import { T0, runRecord } from '../support/records';

const STATES: readonly RunState[] = ['running', 'interrupted', 'waiting_approval', 'completed', 'failed', 'cancelled', 'budget_exceeded'];

function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return runRecord({ updatedAt: T0 + 1500, stepCount: 2, ...overrides });
}

describe('how the editor words run states (src/extension/runStatus)', () => {
  it('only a running run has not stopped: paused and interrupted runs have', () => {
    assert.deepEqual(
      STATES.filter((state) => !isStopped({ state })),
      ['running'],
    );
  });

  it('describes interrupted and waiting runs in words, with steps and time up to their last change', () => {
    assert.equal(runDescription(run({ state: 'interrupted' }), T0 + 60_000), 'interrupted · 2 steps · 1.5 s');
    assert.equal(runDescription(run({ state: 'waiting_approval' }), T0 + 60_000), 'waiting for a decision · 2 steps · 1.5 s');
    assert.equal(runDescription(run({ state: 'completed', endedAt: T0 + 2000 }), T0 + 60_000), 'completed · 2 steps · 2.0 s');
    assert.equal(runDescription(run(), T0 + 3000), 'running · 2 steps · 3.0 s');
    assert.equal(runDescription(run({ stepCount: 1 }), T0 + 3000), 'running · 1 step · 3.0 s');
    for (const state of STATES) assert.ok(RUN_STATE_LABELS[state].length > 0, state);
  });

  it('announces every way a run can stop, with the sentence the runtime recorded', () => {
    const divergence = 'Run run_x no longer matches its agent at step 3: the call to book has other arguments than the recorded one.';
    assert.deepEqual(outcomeMessage(run({ state: 'interrupted', error: divergence })), {
      severity: 'error',
      text: `Keel · travel was interrupted: ${divergence}`,
    });
    assert.deepEqual(outcomeMessage(run({ state: 'waiting_approval', error: 'book_flight was running when its process stopped.' })), {
      severity: 'warning',
      text: 'Keel · travel is waiting for a decision: book_flight was running when its process stopped.',
    });
    assert.deepEqual(outcomeMessage(run({ state: 'failed', error: 'boom' })), { severity: 'error', text: 'Keel · travel failed: boom' });
    assert.deepEqual(outcomeMessage(run({ state: 'cancelled' })), { severity: 'info', text: 'Keel · travel was cancelled.' });
    assert.deepEqual(outcomeMessage(run({ state: 'completed', result: 'Booked.', endedAt: T0 + 250 })), {
      severity: 'info',
      text: 'Keel · travel completed in 250 ms: Booked.',
    });
  });

  it('announces interrupted runs once: again only when one of them is new', () => {
    const a = { id: 'run_a' };
    const b = { id: 'run_b' };
    assert.equal(interruptedNotice([], new Set()), undefined, 'nothing to say');
    assert.equal(interruptedNotice([a], new Set()), 'Keel found 1 interrupted run.');
    assert.equal(interruptedNotice([a], new Set(['run_a'])), undefined, 'already announced');
    assert.equal(interruptedNotice([a, b], new Set(['run_a'])), 'Keel found 2 interrupted runs.');
    assert.equal(interruptedNotice([a, b], new Set(['run_a', 'run_b'])), undefined);
  });

  it('gives the command that decides a pending approval', () => {
    assert.equal(
      resolveCommand({ id: 'appr_run_x:3:0' }),
      "keel resolve appr_run_x:3:0 --retry | --done '<result as JSON>' | --fail '<reason>'",
    );
  });
});
