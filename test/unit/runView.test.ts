import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { RunEvent } from '../../src/runtime/agent/events';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { ModelResponse, ToolCall } from '../../src/runtime/model/model';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { describeStep, stepOutcome } from '../../src/shared/runText';
import { applyEvent, outcome, runFacts, stepRows, type RunViewModel } from '../../webview/run/model/runView';
import { REPO_ROOT } from '../support/processes';
import { runRecord as baseRun, stepRecord } from '../support/records';
import { useTempDirs } from '../support/tempDir';

const RUN_ID = 'run_01m8ct03k4x4d7mxxd4b74';
const OTHER_RUN_ID = 'run_01m8ct0cr77sgg171zkmjq';
const T0 = 1_790_000_000_000;

function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  return baseRun({ id: RUN_ID, ...overrides });
}

function modelResponse(content: string | null, toolCalls: readonly ToolCall[] = []): ModelResponse {
  return {
    message: { role: 'assistant', content, toolCalls },
    finishReason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
    usage: { inputTokens: 100, outputTokens: 20 },
    model: 'travel-script',
  };
}

function modelStep(seq: number, overrides: Partial<StepRecord> = {}): StepRecord {
  return stepRecord({
    runId: RUN_ID,
    seq,
    kind: 'model',
    name: 'keel.scripted:travel-script',
    status: 'completed',
    input: { messageCount: 2, tools: ['search_flights', 'book_flight'] },
    output: modelResponse('Done.'),
    error: null,
    idempotencyKey: null,
    attempts: 1,
    failedAttempts: [],
    startedAt: T0 + seq * 1000,
    endedAt: T0 + seq * 1000 + 5,
    ...overrides,
  });
}

function toolStep(seq: number, overrides: Partial<StepRecord> = {}): StepRecord {
  return stepRecord({
    runId: RUN_ID,
    seq,
    kind: 'tool',
    name: 'search_flights',
    status: 'completed',
    input: { toolCallId: 'call_1_1', arguments: '{"from":"NYC","to":"LIS","date":"2026-12-10"}' },
    output: { content: '[{"id":"UA66","price":598}]', value: [{ id: 'UA66', price: 598 }] },
    error: null,
    idempotencyKey: `${RUN_ID}:${seq - 1}:0`,
    attempts: 1,
    failedAttempts: [],
    startedAt: T0 + seq * 1000,
    endedAt: T0 + seq * 1000 + 1500,
    ...overrides,
  });
}

function inProgress(step: StepRecord): StepRecord {
  return { ...step, status: 'in_progress', output: null, error: null, endedAt: null };
}

const searchCall: ToolCall = { id: 'call_1_1', name: 'search_flights', arguments: '{"from":"NYC","to":"LIS"}' };

describe('Run view model (webview/model/runView.ts)', () => {
  describe('applyEvent', () => {
    const start: RunViewModel = { run: runRecord({ stepCount: 1 }), steps: [modelStep(1)] };

    it('ignores the events of other runs, returning the model unchanged', () => {
      const other = { runId: OTHER_RUN_ID };
      const events: RunEvent[] = [
        { type: 'run_started', run: runRecord({ id: OTHER_RUN_ID }) },
        { type: 'run_finished', run: runRecord({ id: OTHER_RUN_ID, state: 'completed' }) },
        { type: 'step_started', step: inProgress(toolStep(2, other)) },
        { type: 'step_finished', step: toolStep(2, other) },
        { type: 'model_delta', runId: OTHER_RUN_ID, seq: 1, text: 'Hel' },
        { type: 'tool_log', runId: OTHER_RUN_ID, seq: 2, message: 'charging' },
      ];
      for (const event of events) assert.equal(applyEvent(start, event), start, `${event.type} of another run`);
    });

    it('takes the run record of its own run_started and run_finished', () => {
      const finished = runRecord({ state: 'completed', stepCount: 1, endedAt: T0 + 10, result: 'Done.' });

      assert.deepEqual(applyEvent(start, { type: 'run_finished', run: finished }), { run: finished, steps: start.steps });
      const restarted = runRecord({ updatedAt: T0 + 1 });
      assert.equal(applyEvent(start, { type: 'run_started', run: restarted }).run, restarted);
    });

    it('adds a started step without counting it, then replaces it by seq when it finishes and counts it', () => {
      const started = applyEvent(start, { type: 'step_started', step: inProgress(toolStep(2)) });
      assert.deepEqual(
        started.steps.map((step) => [step.seq, step.status]),
        [
          [1, 'completed'],
          [2, 'in_progress'],
        ],
      );
      assert.equal(started.run.stepCount, 1);

      const finished = applyEvent(started, { type: 'step_finished', step: toolStep(2) });
      assert.deepEqual(finished.steps, [modelStep(1), toolStep(2)]);
      assert.equal(finished.run.stepCount, 2);
    });

    it('counts failed steps as finished too', () => {
      const failed = toolStep(2, { status: 'failed', error: 'book_flight failed: card declined' });

      const model = applyEvent(start, { type: 'step_finished', step: failed });

      assert.equal(model.run.stepCount, 2);
      assert.equal(model.steps[1]?.status, 'failed');
    });

    it('ignores events older than what it shows, and counts a step delivered twice once', () => {
      const finished = runRecord({ state: 'completed', stepCount: 2, endedAt: T0 + 10, result: 'Done.' });
      let model: RunViewModel = { run: finished, steps: [modelStep(1), toolStep(2)] };

      model = applyEvent(model, { type: 'step_started', step: inProgress(toolStep(2)) });
      model = applyEvent(model, { type: 'step_finished', step: toolStep(2) });
      model = applyEvent(model, { type: 'run_started', run: runRecord() });

      assert.deepEqual(model, { run: finished, steps: [modelStep(1), toolStep(2)] });
    });

    it('takes the run_started of a resumed run, whose record is newer than the stop it follows', () => {
      const interrupted = runRecord({ state: 'interrupted', stepCount: 1, updatedAt: T0 + 10, error: 'The runtime process stopped.' });
      const model: RunViewModel = { run: interrupted, steps: [modelStep(1)] };
      const resumed = runRecord({ stepCount: 1, updatedAt: T0 + 20 });

      assert.equal(applyEvent(model, { type: 'run_started', run: resumed }).run, resumed);
      assert.equal(applyEvent(model, { type: 'run_started', run: runRecord({ updatedAt: T0 + 10 }) }), model, 'not newer: stale');
    });

    it('keeps the steps ordered by seq whatever order they arrive in', () => {
      let model: RunViewModel = { run: runRecord(), steps: [] };
      for (const step of [toolStep(4), modelStep(1), modelStep(3), toolStep(2)]) {
        model = applyEvent(model, { type: 'step_started', step: inProgress(step) });
      }
      model = applyEvent(model, { type: 'step_finished', step: modelStep(3) });

      assert.deepEqual(
        model.steps.map((step) => [step.seq, step.status]),
        [
          [1, 'in_progress'],
          [2, 'in_progress'],
          [3, 'completed'],
          [4, 'in_progress'],
        ],
      );
    });

    it('leaves the model as it is for streamed text and tool logs', () => {
      assert.equal(applyEvent(start, { type: 'model_delta', runId: RUN_ID, seq: 1, text: 'Book' }), start);
      assert.equal(applyEvent(start, { type: 'tool_log', runId: RUN_ID, seq: 2, message: 'charging $598' }), start);
    });

    it('does not change the model it is given', () => {
      const steps = [modelStep(1)];
      const model: RunViewModel = { run: runRecord({ stepCount: 1 }), steps };

      applyEvent(model, { type: 'step_started', step: inProgress(toolStep(2)) });
      applyEvent(model, { type: 'step_finished', step: modelStep(1, { status: 'failed', error: 'boom' }) });

      assert.deepEqual(model, { run: runRecord({ stepCount: 1 }), steps: [modelStep(1)] });
      assert.equal(model.steps, steps);
    });

    describe('fed the events of a real run', () => {
      const tempDir = useTempDirs();

      it('ends with the run and the steps the store recorded', async () => {
        const store = openSqliteStore(join(tempDir('keel-runview-'), 'keel.db'));
        try {
          const { agent, file } = await loadAgentFile(join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts'));
          const events: RunEvent[] = [];
          const handle = await new Runtime({ store }).start(agent, {
            input: 'Fly NYC to LIS on 2026-12-10',
            agentFile: file,
            onEvent: (event) => events.push(event),
          });
          const finished = await handle.done;

          const first = events[0];
          assert.ok(first?.type === 'run_started', 'the first event is run_started');
          let model: RunViewModel = { run: first.run, steps: [] };
          for (const event of events) model = applyEvent(model, event);

          assert.deepEqual(model.run, finished);
          assert.deepEqual(model.steps, await store.getSteps(finished.id));
          assert.equal(model.steps.length, finished.stepCount);
        } finally {
          await store.close();
        }
      });

      it('counts the same steps as the store while the run is still going', async () => {
        const store = openSqliteStore(join(tempDir('keel-runview-'), 'keel.db'));
        try {
          const { agent } = await loadAgentFile(join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts'));
          const counts: [number, number][] = [];
          let model: RunViewModel | undefined;
          const pending: Promise<void>[] = [];
          const handle = await new Runtime({ store }).start(agent, {
            input: 'Fly NYC to LIS on 2026-12-10',
            onEvent: (event) => {
              model = event.type === 'run_started' ? { run: event.run, steps: [] } : model && applyEvent(model, event);
              if (event.type !== 'step_finished' || !model) return;
              const shown = model.run.stepCount;
              pending.push(
                store.getRun(event.step.runId).then((stored) => {
                  counts.push([shown, stored?.stepCount ?? -1]);
                }),
              );
            },
          });
          await handle.done;
          await Promise.all(pending);

          assert.equal(counts.length, 5);
          for (const [shown, stored] of counts) assert.equal(shown, stored);
        } finally {
          await store.close();
        }
      });
    });
  });

  describe('stepRows', () => {
    it('shows a model step that called tools: title, summary, duration and its input and output', () => {
      const step = modelStep(1, { output: modelResponse('Searching.', [searchCall]) });

      const [row] = stepRows([step]);

      assert.deepEqual(row, {
        key: `${RUN_ID}:1`,
        seq: 1,
        kind: 'model',
        status: 'completed',
        title: 'model',
        server: null,
        summary: 'search_flights(from: "NYC", to: "LIS")',
        duration: '5 ms',
        sections: [
          { label: 'Input', text: JSON.stringify(step.input, null, 2) },
          { label: 'Output', text: JSON.stringify(step.output, null, 2) },
        ],
      });
    });

    it('titles a tool step with the tool name, says what it returned without naming it again, and shows its idempotency key', () => {
      const [row] = stepRows([toolStep(2)]);

      assert.equal(row?.title, 'search_flights');
      assert.equal(row?.summary, '→ [{"id":"UA66","price":598}]');
      assert.equal(row?.duration, '1.5 s');
      assert.deepEqual(
        row?.sections.map((section) => section.label),
        ['Input', 'Output', 'Idempotency key'],
      );
      assert.equal(row?.sections[2]?.text, `${RUN_ID}:1:0`);
      assert.equal(row?.sections[0]?.text, '{\n  "toolCallId": "call_1_1",\n  "arguments": "{\\"from\\":\\"NYC\\",\\"to\\":\\"LIS\\",\\"date\\":\\"2026-12-10\\"}"\n}');
    });

    it('shows the error of a failed step in its own section', () => {
      const failed = toolStep(4, {
        name: 'book_flight',
        status: 'failed',
        output: { content: 'Error: book_flight failed: card declined' },
        error: 'book_flight failed: card declined',
      });

      const [row] = stepRows([failed]);

      assert.equal(row?.status, 'failed');
      assert.equal(row?.summary, '✗ book_flight failed: card declined');
      assert.deepEqual(row?.sections, [
        { label: 'Input', text: JSON.stringify(failed.input, null, 2) },
        { label: 'Output', text: JSON.stringify(failed.output, null, 2) },
        { label: 'Error', text: 'book_flight failed: card declined' },
        { label: 'Idempotency key', text: `${RUN_ID}:3:0` },
      ]);
    });

    it("shows the stack of the error a tool threw in its own section, its lines as lines, and its class in the output", () => {
      const stacktrace = '    at run (/work/agent.agent.ts:20:11)';
      const failed = toolStep(4, {
        name: 'cancel',
        status: 'failed',
        output: { exception: { type: 'RangeError', stacktrace } },
        error: 'cancel failed: RangeError: cancellations are closed',
      });

      const [row] = stepRows([failed]);

      assert.deepEqual(row?.sections.slice(1, 4), [
        { label: 'Output', text: JSON.stringify({ exception: { type: 'RangeError' } }, null, 2) },
        { label: 'Error', text: 'cancel failed: RangeError: cancellations are closed' },
        { label: 'Stack', text: stacktrace },
      ]);
    });

    it('shows a step in progress without output or duration', () => {
      const rows = stepRows([inProgress(modelStep(1)), inProgress(toolStep(2))]);

      assert.deepEqual(
        rows.map((row) => [row.summary, row.duration, row.sections.map((section) => section.label)]),
        [
          ['thinking…', '', ['Input']],
          ['running…', '', ['Input', 'Idempotency key']],
        ],
      );
    });

    it('gives every row a key unique across runs and keeps the order it was given', () => {
      const rows = stepRows([modelStep(1), toolStep(2), modelStep(1, { runId: OTHER_RUN_ID })]);

      assert.deepEqual(
        rows.map((row) => row.key),
        [`${RUN_ID}:1`, `${RUN_ID}:2`, `${OTHER_RUN_ID}:1`],
      );
    });

    it('cuts long summaries to 140 characters', () => {
      const long = 'x'.repeat(500);
      const [row] = stepRows([toolStep(2, { output: { content: long } })]);

      assert.equal(row?.summary.length, 140);
      assert.ok(row?.summary.endsWith('…'));
    });
  });

  describe('runFacts', () => {
    it('lists state, duration, steps, tokens, model and run id of a finished run', () => {
      const run = runRecord({
        state: 'completed',
        stepCount: 5,
        endedAt: T0 + 2_500,
        updatedAt: T0 + 2_500,
        usage: { inputTokens: 1429, outputTokens: 130 },
      });

      assert.deepEqual(runFacts(run, T0 + 999_999), [
        { label: 'State', value: 'completed' },
        { label: 'Duration', value: '2.5 s' },
        { label: 'Steps', value: '5' },
        { label: 'Tokens', value: '1559 (1429 in, 130 out)' },
        { label: 'Model', value: 'keel.scripted:travel-script' },
        { label: 'Run', value: RUN_ID },
      ]);
    });

    it('measures a running run up to now', () => {
      const facts = runFacts(runRecord({ updatedAt: T0 + 1_000 }), T0 + 75_000);

      assert.deepEqual(facts[1], { label: 'Duration', value: '1 min 15 s' });
    });

    it('measures a run that stopped without an end time up to its last update', () => {
      const facts = runFacts(runRecord({ state: 'failed', updatedAt: T0 + 300 }), T0 + 75_000);

      assert.deepEqual(facts[1], { label: 'Duration', value: '300 ms' });
    });
  });

  describe('outcome', () => {
    it('is the result of a completed run', () => {
      assert.deepEqual(outcome(runRecord({ state: 'completed', result: 'Booked UA66 for $598.' })), {
        kind: 'result',
        text: 'Booked UA66 for $598.',
      });
      assert.deepEqual(outcome(runRecord({ state: 'completed', result: null })), { kind: 'result', text: '' });
    });

    it('is pending while the run goes', () => {
      assert.deepEqual(outcome(runRecord()), { kind: 'pending', text: 'Running…' });
    });

    it('is the error of a failed or cancelled run, or its state when it has none', () => {
      assert.deepEqual(outcome(runRecord({ state: 'failed', error: 'travel reached maxSteps (6) without a final answer.' })), {
        kind: 'error',
        text: 'travel reached maxSteps (6) without a final answer.',
      });
      assert.deepEqual(outcome(runRecord({ state: 'cancelled', error: 'Cancelled by the user.' })), {
        kind: 'error',
        text: 'Cancelled by the user.',
      });
      assert.deepEqual(outcome(runRecord({ state: 'cancelled' })), { kind: 'error', text: 'cancelled' });
    });
  });
});

describe('describeStep (src/shared/runText.ts)', () => {
  describe('describeStep', () => {
    it('shows the tool calls of a model step with their arguments', () => {
      const step = modelStep(1, {
        output: modelResponse('Let me look.', [
          searchCall,
          { id: 'call_1_2', name: 'book_flight', arguments: '{"flightId":"UA66","seats":2,"window":true}' },
        ]),
      });

      assert.equal(
        describeStep(step),
        'search_flights(from: "NYC", to: "LIS"), book_flight(flightId: "UA66", seats: 2, window: true)',
      );
    });

    it('shows arguments that are not a JSON object as the model wrote them', () => {
      const step = modelStep(1, {
        output: modelResponse(null, [
          { id: 'a', name: 'search_flights', arguments: '{"from": "NYC",' },
          { id: 'b', name: 'book_flight', arguments: '["UA66"]' },
        ]),
      });

      assert.equal(describeStep(step), 'search_flights({"from": "NYC",), book_flight(["UA66"])');
    });

    it("quotes a model step's answer, on one line", () => {
      const step = modelStep(5, { output: modelResponse('Booked UA66.\n\nConfirmation   KEEL-UA66-30.') });

      assert.equal(describeStep(step), '"Booked UA66.\\n\\nConfirmation KEEL-UA66-30."');
    });

    it('shows a tool step as name → content, flattened to one line', () => {
      assert.equal(
        describeStep(toolStep(2, { output: { content: 'first line\nsecond   line', value: 'x' } })),
        'search_flights → first line second line',
      );
    });

    it('says why a model or tool step failed', () => {
      assert.equal(
        describeStep(modelStep(1, { status: 'failed', output: null, error: 'openai:gpt-4o-mini: 401 Incorrect API key' })),
        'failed: openai:gpt-4o-mini: 401 Incorrect API key',
      );
      assert.equal(describeStep(modelStep(1, { status: 'failed', output: null, error: null })), 'failed: unknown error');
      assert.equal(
        describeStep(toolStep(2, { status: 'failed', error: 'Invalid arguments for search_flights' })),
        'search_flights ✗ Invalid arguments for search_flights',
      );
    });

    it('shows steps in progress without an outcome', () => {
      assert.equal(describeStep(inProgress(modelStep(1))), 'thinking…');
      assert.equal(describeStep(inProgress(toolStep(2, { name: 'book_flight' }))), 'book_flight(…)');
    });

    it('cuts to the length asked for, ending in an ellipsis', () => {
      const step = toolStep(2, { output: { content: 'y'.repeat(300) } });

      const short = describeStep(step, 30);
      assert.equal(short.length, 30);
      assert.equal(short, `search_flights → ${'y'.repeat(12)}…`);
      assert.equal(describeStep(step).length, 100);
      assert.equal(describeStep(toolStep(2, { output: { content: 'ok' } }), 30), 'search_flights → ok');
    });

    it('says what a tool step did without its name for rows that name it (stepOutcome)', () => {
      assert.equal(stepOutcome(toolStep(2, { output: { content: 'ok' } })), '→ ok');
      assert.equal(stepOutcome(toolStep(2, { status: 'failed', error: 'Invalid arguments for search_flights' })), '✗ Invalid arguments for search_flights');
      assert.equal(stepOutcome(inProgress(toolStep(2))), 'running…');
      assert.equal(stepOutcome(modelStep(1, { status: 'failed', output: null, error: null })), 'failed: unknown error');
    });
  });
});
