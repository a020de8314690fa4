import assert from 'node:assert/strict';
import { toRun } from '../../src/daemon/toProtocol';
import { matchesRun, parseRunFilter, type RunFilter } from '../../src/extension/runs/runFilter';
import type { Run } from '../../src/protocol/records';
import { runRecord } from '../support/records';

function filter(query: string): RunFilter {
  const parsed = parseRunFilter(query);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
}

const runs: readonly Run[] = [
  toRun(runRecord({ id: 'run_a', agent: 'travel', input: 'Fly NYC to LIS', state: 'completed', result: 'Booked UA66.' })),
  toRun(runRecord({ id: 'run_b', agent: 'travel', input: 'Paris in May', state: 'failed', error: 'Invalid arguments for book_flight' })),
  toRun(runRecord({ id: 'run_c', agent: 'researcher', input: 'Weather in Paris?', state: 'waiting_approval' })),
];

/** The ids of the runs a query keeps; `flags` counts flags by run id. */
function kept(query: string, flags: Readonly<Record<string, number>> = {}): string[] {
  const parsed = filter(query);
  return runs.filter((run) => matchesRun(parsed, run, flags[run.id] ?? 0)).map((run) => run.id);
}

describe('the Runs view filter (src/extension/runs/runFilter.ts)', () => {
  it('keeps every run for an empty query', () => {
    assert.deepEqual(kept('  '), ['run_a', 'run_b', 'run_c']);
  });

  it('finds words in the input, result, error, agent and id, case-insensitively, every word required', () => {
    assert.deepEqual(kept('paris'), ['run_b', 'run_c']);
    assert.deepEqual(kept('PARIS may'), ['run_b']);
    assert.deepEqual(kept('ua66'), ['run_a']);
    assert.deepEqual(kept('book_flight'), ['run_b']);
    assert.deepEqual(kept('run_c'), ['run_c']);
  });

  it('narrows by agent and by state, either of several values of one kind matching', () => {
    assert.deepEqual(kept('agent:travel'), ['run_a', 'run_b']);
    assert.deepEqual(kept('state:failed state:completed'), ['run_a', 'run_b']);
    assert.deepEqual(kept('state:waiting'), ['run_c'], 'the word a person uses for waiting_approval');
    assert.deepEqual(kept('agent:Travel state:failed paris'), ['run_b']);
  });

  it('keeps flagged runs only when asked', () => {
    assert.deepEqual(kept('flagged', { run_b: 2 }), ['run_b']);
    assert.deepEqual(kept('is:flagged agent:researcher', { run_b: 2 }), []);
  });

  it('says in one sentence what is wrong with a query', () => {
    assert.deepEqual(parseRunFilter('state:broken'), {
      error: 'There is no run state "broken": use one of running, interrupted, waiting_approval, completed, failed, cancelled, budget_exceeded.',
    });
    assert.deepEqual(parseRunFilter('agent:'), { error: 'agent: needs an agent name, as in agent:travel.' });
  });
});
