import assert from 'node:assert/strict';
import type { StepRecord } from '../../src/runtime/store/checkpointStore';
import { compareRuns, type ComparedAspect } from '../../src/shared/runComparison';
import { runRecord, stepRecord } from '../support/records';
import { seededRandom } from '../support/seededRandom';

const TOOLS = ['search_flights', 'book_flight', 'get_weather', 'send_email'];

/** A run's journal as the agent loop writes it: a model call asking for some tools, each call, and so on, then an answer. */
function generatedSteps(random: () => number, runId: string): StepRecord[] {
  const steps: StepRecord[] = [];
  const turns = 1 + Math.floor(random() * 4);
  for (let turn = 0; turn < turns; turn++) {
    const calls = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, index) => ({
      id: `call_${runId}_${turn}_${index}`,
      name: TOOLS[Math.floor(random() * TOOLS.length)] as string,
      arguments: JSON.stringify({ city: ['Paris', 'Oslo', 'Lima'][Math.floor(random() * 3)], n: Math.floor(random() * 5) }),
    }));
    steps.push(modelStep(runId, steps.length + 1, null, calls));
    for (const call of calls) steps.push(toolStep(runId, steps.length + 1, call.name, call.arguments, { rows: Math.floor(random() * 9) }));
  }
  steps.push(modelStep(runId, steps.length + 1, `Answer ${Math.floor(random() * 100)}`, []));
  return steps;
}

function modelStep(runId: string, seq: number, content: string | null, toolCalls: readonly { id: string; name: string; arguments: string }[]): StepRecord {
  return stepRecord({
    runId,
    seq,
    kind: 'model',
    name: 'openai:gpt-4o-mini',
    status: 'completed',
    output: { message: { role: 'assistant', content, toolCalls }, finishReason: toolCalls.length > 0 ? 'tool_calls' : 'stop', usage: { inputTokens: 10, outputTokens: 5 }, model: 'gpt-4o-mini' },
  });
}

function toolStep(runId: string, seq: number, name: string, args: string, value: unknown): StepRecord {
  return stepRecord({ runId, seq, kind: 'tool', name, status: 'completed', input: { toolCallId: `call_${runId}_${seq}`, arguments: args }, output: { content: JSON.stringify(value), value } });
}

/** The same journal in another run: its own run id and call ids, as a replay or a fork records them. */
function copyTo(runId: string, steps: readonly StepRecord[]): StepRecord[] {
  return steps.map((step) => ({ ...step, runId, input: step.kind === 'tool' ? { ...(step.input as object), toolCallId: `call_${runId}_${step.seq}` } : step.input }));
}

const runA = runRecord({ id: 'run_a', state: 'completed', result: 'Answer' });
const runB = runRecord({ id: 'run_b', state: 'completed', result: 'Answer' });

/** A change to one step and the aspect the comparison must name for it. */
const MUTATIONS: readonly { readonly name: string; readonly applies: (step: StepRecord) => boolean; readonly apply: (step: StepRecord) => StepRecord; readonly aspect: ComparedAspect }[] = [
  {
    name: 'a tool returns another value',
    applies: (step) => step.kind === 'tool',
    apply: (step) => ({ ...step, output: { content: '"other"', value: 'other' } }),
    aspect: 'result',
  },
  {
    name: 'a tool is called with other arguments',
    applies: (step) => step.kind === 'tool',
    apply: (step) => ({ ...step, input: { toolCallId: 'x', arguments: '{"city":"Rome"}' } }),
    aspect: 'arguments',
  },
  {
    name: 'a tool call fails',
    applies: (step) => step.kind === 'tool',
    apply: (step) => ({ ...step, status: 'failed', error: 'HTTP 503', output: { content: 'Error: HTTP 503' } }),
    aspect: 'status',
  },
  {
    name: 'another tool is called',
    applies: (step) => step.kind === 'tool',
    apply: (step) => ({ ...step, name: 'refund_payment' }),
    aspect: 'tool',
  },
  {
    name: 'the model answers other text',
    applies: (step) => step.kind === 'model' && (step.output as { message: { content: string | null } }).message.content !== null,
    apply: (step) => ({ ...step, output: { message: { role: 'assistant', content: 'Something else', toolCalls: [] } } }),
    aspect: 'model output',
  },
];

describe('comparing two runs step by step', () => {
  it('finds no difference between a journal and its copy in another run, whatever the journal (seeded shapes)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const steps = generatedSteps(seededRandom(seed), 'run_a');
      const comparison = compareRuns({ run: runA, steps }, { run: runB, steps: copyTo('run_b', steps) });
      assert.equal(comparison.first, null, `seed ${seed}: ${comparison.first?.text ?? ''}`);
      assert.equal(comparison.rows.length, steps.length, `seed ${seed}: each step against its copy`);
    }
  });

  it('points at the step that was changed, and names what changed in it (seeded shapes and positions)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seededRandom(seed);
      const steps = generatedSteps(random, 'run_a');
      const mutation = MUTATIONS[seed % MUTATIONS.length] as (typeof MUTATIONS)[number];
      const candidates = steps.filter(mutation.applies);
      const target = candidates[Math.floor(random() * candidates.length)] as StepRecord;
      const changed = copyTo('run_b', steps).map((step) => (step.seq === target.seq ? mutation.apply(step) : step));
      const { first, rows } = compareRuns({ run: runA, steps }, { run: runB, steps: changed });
      assert.ok(first, `seed ${seed} (${mutation.name}): a difference`);
      const row = rows[first.row ?? -1];
      assert.equal(row?.a?.seq, target.seq, `seed ${seed} (${mutation.name}): at step ${target.seq}, not ${first.text}`);
      assert.equal(row?.b?.seq, target.seq, `seed ${seed} (${mutation.name})`);
      assert.equal(first.difference.aspect, mutation.aspect, `seed ${seed} (${mutation.name}): ${first.text}`);
      assert.equal(rows.filter((each) => each.differences.length > 0).length, 1, `seed ${seed} (${mutation.name}): only that row differs`);
    }
  });

  it('sets a step only one run took against a gap, and pairs the steps after it again (seeded shapes and positions)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const steps = generatedSteps(random, 'run_a');
      const at = 1 + Math.floor(random() * (steps.length - 1));
      const extra = modelStep('run_b', 0, 'Let me think again.', []);
      const longer = [...copyTo('run_b', steps).slice(0, at), extra, ...copyTo('run_b', steps).slice(at)].map((step, index) => ({ ...step, seq: index + 1 }));
      const { first, rows } = compareRuns({ run: runA, steps }, { run: runB, steps: longer });
      assert.equal(rows.length, steps.length + 1, `seed ${seed}: one row more than run A has steps`);
      const gaps = rows.filter((row) => row.a === null);
      assert.equal(gaps.length, 1, `seed ${seed}: one gap`);
      assert.equal(rows.filter((row) => row.differences.length > 0).length, 1, `seed ${seed}: the rest pairs again`);
      assert.equal(first?.difference.aspect, 'step', `seed ${seed}`);
      assert.match(first.text, /Run B took step \d+ \(a model call\), which run A did not/);
    }
  });

  it('reads arguments written in another order as the same, and ignores the ids each run gives its calls', () => {
    const steps = [toolStep('run_a', 1, 'search_flights', '{"from":"Paris","to":"Oslo"}', [1, 2])];
    const other = [toolStep('run_b', 1, 'search_flights', '{"to":"Oslo","from":"Paris"}', [1, 2])];
    assert.equal(compareRuns({ run: runA, steps }, { run: runB, steps: other }).first, null);
  });

  it('tells runs apart by their input first, and by how they ended when their steps agree', () => {
    const steps = generatedSteps(seededRandom(7), 'run_a');
    const otherInput = compareRuns({ run: runA, steps }, { run: { ...runB, input: 'something else' }, steps: copyTo('run_b', steps) });
    assert.equal(otherInput.first?.difference.aspect, 'input');
    assert.equal(otherInput.first.row, null);
    const failed = compareRuns({ run: runA, steps }, { run: { ...runB, state: 'failed', result: null, error: 'Budget exceeded' }, steps: copyTo('run_b', steps) });
    assert.equal(failed.first?.difference.aspect, 'outcome');
    assert.match(failed.first.text, /ended differently: completed: "Answer" \/ failed: Budget exceeded/);
  });

  it('orders steps by their sequence number, as the store may list them in any order', () => {
    const steps = generatedSteps(seededRandom(11), 'run_a');
    const comparison = compareRuns({ run: runA, steps: [...steps].reverse() }, { run: runB, steps: copyTo('run_b', steps) });
    assert.equal(comparison.first, null);
    assert.deepEqual(
      comparison.rows.map((row) => row.a?.seq),
      steps.map((step) => step.seq),
    );
  });
});
