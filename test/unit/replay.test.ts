import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../src/runtime/agent/runtime';
import { Host } from '../../src/runtime/host/host';
import { forkDocument, forkRun, parseForkDocument } from '../../src/runtime/replay/fork';
import { LiveRun } from '../../src/runtime/replay/liveRun';
import { loadRecording, type Recording } from '../../src/runtime/replay/recording';
import { agentsOf, replayRecording } from '../../src/runtime/replay/replay';
import { ReplayEngine, type Stop } from '../../src/runtime/replay/replayEngine';
import { Condition, evaluateExpression } from '../../src/runtime/replay/sandboxEval';
import { stepView } from '../../src/runtime/replay/stepView';
import type { Timeline } from '../../src/runtime/replay/timeline';
import { runIdOfTranscript, transcriptUri } from '../../src/protocol/debug';
import { transcriptOf } from '../../src/runtime/replay/transcript';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { countingAgents, type AgentVariant } from '../support/replayAgents';
import { useTempDirs } from '../support/tempDir';

describe('replay engine', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;

  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-replay-'), 'keel.db'));
  });
  afterEach(() => store.close());

  /** Records a run of the lead agent (with its researcher sub-agent run). */
  async function recorded(variant: AgentVariant = {}): Promise<{ run: RunRecord; recording: Recording }> {
    const { lead } = countingAgents(variant);
    const run = await (await new Runtime({ store }).start(lead, { input: 'go', agentFile: '/nowhere/lead.agent.ts' })).done;
    assert.equal(run.state, 'completed', run.error ?? '');
    return { run, recording: await loadRecording(store, run.id) };
  }

  /** Where each position is: `lead:3`, `researcher:1`... */
  function path(timeline: Timeline): string[] {
    return timeline.positions.map((position) => `${position.run.run.agent}:${position.seq}`);
  }

  /** Where an engine stopped, as path() names positions. */
  function placeOf(engine: ReplayEngine): (stop: Stop) => string {
    return (stop) => {
      const position = engine.timeline.positions[stop.index];
      return position ? `${position.run.run.agent}:${position.seq}` : `nowhere (${stop.index})`;
    };
  }

  const ORDER = ['lead:1', 'lead:2', 'lead:3', 'lead:4', 'researcher:1', 'researcher:2', 'researcher:3', 'lead:5', 'lead:6', 'lead:7', 'lead:8'];

  it('re-executes a run with its agent: every step in order, sub-agent runs nested, no model or tool called', async () => {
    const { recording } = await recorded();
    const again = countingAgents();
    const timeline = await replayRecording(recording, { agents: agentsOf(again.lead) });

    assert.deepEqual(path(timeline), ORDER);
    assert.deepEqual(again.calls, { model: 0, tools: 0 }, 'the replay called a model or a tool');
    for (const run of timeline.runs.values()) {
      assert.equal(run.unchecked, null, `${run.run.agent} was not checked against its agent`);
      assert.match(run.outcome ?? '', /^Replayed as recorded: the run completed/);
    }
    const researcher = timeline.positions[4];
    assert.equal(researcher?.run.depth, 1);
    assert.equal(researcher?.run.parent?.seq, 4);
    assert.deepEqual(
      timeline.frames(researcher!).map((frame) => `${frame.run.run.agent}:${frame.seq}`),
      ['researcher:1', 'lead:4'],
    );
  });

  it('shows at each step what the model was sent, what it said, the tool call and result, the spend and the state', async () => {
    const { recording } = await recorded();
    const timeline = await replayRecording(recording, { agents: agentsOf(countingAgents().lead) });
    const at = (index: number) => stepView(timeline, timeline.positions[index]!, { messages: true });

    const first = at(0);
    assert.deepEqual(
      first.messages?.map((message) => (message as { role: string }).role),
      ['system', 'user'],
    );
    assert.equal(first.output?.message.content, 'Looking it up.');
    assert.deepEqual(first.state['turn'], 0);

    const lookup = at(1);
    assert.deepEqual(lookup.args, { n: 4 });
    assert.deepEqual([lookup.result, lookup.content, lookup.error], [{ value: 40 }, '{"value":40}', null], 'result is the tool’s value; content the text the model read');
    assert.deepEqual(lookup.state['toolCall'], { index: 0, of: 1 });
    assert.equal((lookup.budget['spent'] as { steps: number }).steps, 2);

    const secondCall = at(9);
    assert.equal(secondCall.step['name'], 'lookup');
    assert.deepEqual(secondCall.state['toolCall'], { index: 1, of: 2 });
    assert.equal(secondCall.messages?.length, 8, 'system, user, 3 model turns, 3 tool results');

    const last = at(10);
    assert.match(String(last.state['answer']), /^Done: \{"receipt":"R-40"\} \/ \{"value":50\}$/);
    assert.equal(last.state['runState'], 'completed');
    const spent = last.budget['spent'] as { inputTokens: number; steps: number };
    assert.equal(spent.steps, 8);
    assert.equal(spent.inputTokens + (last.budget['spent'] as { outputTokens: number }).outputTokens, recording.run.usage.inputTokens + recording.run.usage.outputTokens);
  });

  it('builds the same steps and conversation from the recording alone as the agent re-executing it', async () => {
    const { recording } = await recorded();
    const checked = await replayRecording(recording, { agents: agentsOf(countingAgents().lead) });
    const alone = await replayRecording(recording, { unchecked: 'no agent in this test' });
    assert.deepEqual(path(alone), ORDER);
    for (const run of alone.runs.values()) assert.equal(run.unchecked, 'no agent in this test');
    // The same messages, but for the fences the runtime puts around tool results (the guard's, from the agent).
    const shape = (timeline: Timeline, index: number) =>
      stepView(timeline, timeline.positions[index]!, { messages: true }).messages?.map((message) => {
        const { role, content } = message as { role: string; content: string | null };
        return role === 'tool' ? role : `${role}: ${content}`;
      });
    for (const [index, position] of checked.positions.entries()) {
      assert.deepEqual(shape(alone, index), shape(checked, index), `messages at ${index}`);
      assert.equal(alone.positions[index]?.turn, position.turn, `turn at ${index}`);
    }
  });

  it('steps back to exactly the state it stepped forward from, at every step', async () => {
    const { recording } = await recorded();
    const timeline = await replayRecording(recording, { agents: agentsOf(countingAgents().lead) });
    const engine = new ReplayEngine(timeline);
    const snapshot = () => JSON.stringify(engine.view(engine.position!, true));
    const forward = new Map<number, string>();
    await engine.start(true);
    forward.set(engine.current, snapshot());
    while (engine.current < timeline.positions.length - 1) {
      await engine.stepIn();
      forward.set(engine.current, snapshot());
    }
    assert.equal(forward.size, timeline.positions.length);
    const visited: number[] = [];
    while (engine.current > 0) {
      await engine.stepBack();
      visited.push(engine.current);
      assert.equal(snapshot(), forward.get(engine.current), `the state at ${engine.current}, reached backwards`);
    }
    assert.deepEqual(visited, [9, 8, 7, 3, 2, 1, 0], 'step back passes the sub-agent run');

    for (let index = 0; index < timeline.positions.length - 1; index++) {
      await engine.goTo(index);
      const before = snapshot();
      const depth = engine.position!.run.depth;
      await engine.next();
      // Stepping out of a sub-agent run's last step lands in its parent, and stepping back from there passes the sub-agent run.
      if (engine.position!.run.depth !== depth) continue;
      await engine.stepBack();
      assert.equal(engine.current, index, `step then step back from ${index}`);
      assert.equal(snapshot(), before);
    }
  });

  it('steps over, into and out of sub-agent runs, continues and reverse-continues between breakpoints', async () => {
    const { recording } = await recorded();
    const engine = new ReplayEngine(await replayRecording(recording, { agents: agentsOf(countingAgents().lead) }));
    const where = placeOf(engine);

    assert.equal(where(await engine.start(true)), 'lead:1');
    await engine.goTo(3);
    assert.equal(where(await engine.next()), 'lead:5', 'step over passes the researcher run');
    await engine.goTo(3);
    assert.equal(where(await engine.stepIn()), 'researcher:1');
    assert.equal(where(await engine.next()), 'researcher:2');
    assert.equal(where(await engine.stepOut()), 'lead:5');
    assert.equal(where(await engine.stepBack()), 'lead:4', 'step back passes the researcher run');

    engine.setFunctionBreakpoints([
      { id: 1, name: 'note' },
      { id: 2, name: 'lookup', condition: 'args.n === 5' },
    ]);
    await engine.goTo(0);
    const note = await engine.continue();
    assert.equal(note.reason, 'function breakpoint');
    assert.equal(where(note), 'researcher:2');
    const lookup = await engine.continue();
    assert.equal(where(lookup), 'lead:7', 'the lookup of n=4 does not meet the condition');
    const end = await engine.continue();
    assert.equal(where(end), 'lead:8');
    assert.match(end.description, /^The end of the session\. Replayed as recorded: the run completed/);

    assert.equal(where(await engine.reverseContinue()), 'lead:7');
    assert.equal(where(await engine.reverseContinue()), 'researcher:2');
    const start = await engine.reverseContinue();
    assert.equal(start.reason, 'entry');
    assert.equal(start.index, 0);
  });

  it('stops on failed steps and flagged steps when those exception filters are on, and on conditions that throw', async () => {
    const variant = { amount: 5000, secondLookup: 4 };
    const { recording } = await recorded(variant);
    const engine = new ReplayEngine(await replayRecording(recording, { agents: agentsOf(countingAgents(variant).lead) }));
    const where = placeOf(engine);
    engine.setExceptionFilters(['errors', 'flags']);
    await engine.start(true);

    const failed = await engine.continue();
    assert.deepEqual([failed.reason, failed.exception, where(failed)], ['exception', 'errors', 'lead:6']);
    assert.match(failed.text ?? '', /declined/);
    const flagged = await engine.continue();
    assert.deepEqual([flagged.reason, flagged.exception, where(flagged)], ['exception', 'flags', 'lead:7']);
    assert.match(flagged.description, /^Step 7 is flagged: repeated_call\.$/);
    assert.deepEqual(
      engine.view(engine.position!).flags.map((flag) => (flag as { kind: string }).kind),
      ['repeated_call'],
    );
    assert.equal(where(await engine.reverseContinue()), 'lead:6', 'the filters stop stepping backwards too');

    engine.setExceptionFilters([]);
    assert.equal((await engine.continue()).reason, 'step', 'with the filters off, nothing stops the replay');

    engine.setFunctionBreakpoints([{ id: 1, name: 'pay', condition: 'state.nothing.here' }]);
    await engine.goTo(0);
    const stop = await engine.continue();
    assert.equal(stop.reason, 'function breakpoint');
    assert.match(engine.conditionErrors[0] ?? '', /The condition state\.nothing\.here failed at step 6: .*undefined/);
  });

  it('stops where a condition runs out of time, saying so, and still stops later where it holds', async () => {
    const { recording } = await recorded();
    const engine = new ReplayEngine(await replayRecording(recording, { agents: agentsOf(countingAgents().lead) }));
    const where = placeOf(engine);
    engine.setFunctionBreakpoints([{ id: 1, name: 'lookup', condition: 'args.n === 4 ? (() => { for (;;) {} })() : args.n === 5' }]);
    await engine.start(true);
    const looping = await engine.continue();
    assert.equal(looping.reason, 'function breakpoint');
    assert.equal((engine.view(engine.position!).args as { n: number }).n, 4);
    assert.equal(engine.conditionErrors.length, 1);
    assert.match(engine.conditionErrors[0] ?? '', new RegExp(`failed at step ${engine.position!.seq}: .*timed out`));
    assert.equal(where(await engine.continue()), 'lead:7', 'the condition holds at the lookup of n=5');
  });

  it('tests conditions over the messages of each step, forwards and backwards', async () => {
    const { recording } = await recorded();
    const engine = new ReplayEngine(await replayRecording(recording, { agents: agentsOf(countingAgents().lead) }));
    const where = placeOf(engine);
    engine.setFunctionBreakpoints([{ id: 1, name: 'lookup', condition: 'messages.length === 3 || messages.at(-1).role === "tool"' }]);
    await engine.start(true);
    const first = await engine.continue();
    assert.equal(first.reason, 'function breakpoint');
    assert.equal(where(first), 'lead:2', 'the first lookup comes after the system, user and assistant messages');
    assert.equal(where(await engine.continue()), 'lead:7', 'the second comes after a tool result');
    assert.equal(where(await engine.reverseContinue()), 'lead:2');
    assert.deepEqual(engine.conditionErrors, []);
  });

  it('reports where the agent no longer matches the recording, and stops the replay there', async () => {
    const { recording } = await recorded();
    const changed = await replayRecording(recording, { agents: agentsOf(countingAgents({ instructions: 'Something else.' }).lead) });
    assert.deepEqual(path(changed), ['lead:1']);
    assert.match(changed.positions[0]?.divergence ?? '', /no longer matches its agent at step 1: the conversation the agent now sends the model differs/);

    const shorter = await replayRecording(recording, { agents: agentsOf(countingAgents({ maxSteps: 2 }).lead) });
    assert.deepEqual(path(shorter), ['lead:1', 'lead:2', 'lead:3', 'lead:4', 'researcher:1', 'researcher:2', 'researcher:3']);
    assert.match(shorter.positions[3]?.divergence ?? '', /at step 5: the journal recorded a model call here, but the agent now stops, having reached maxSteps \(2\)/);

    const looping = await replayRecording(recording, { agents: agentsOf(countingAgents({ sameCall: 1 }).lead) });
    assert.deepEqual(path(looping), ['lead:1']);
    assert.match(
      looping.positions[0]?.divergence ?? '',
      /^The agent now ends the run after step 1 \(Stopped a loop: the model asked for lookup with the same arguments 1 times\.\), but the recording goes on to step 8\.$/,
    );

    const engine = new ReplayEngine(changed);
    const stop = await engine.start(false);
    assert.equal(stop.reason, 'exception');
    assert.equal(stop.exception, 'divergence');
  });

  it('replays an interrupted run to where its recording ends', async () => {
    const { recording } = await recorded();
    const cut: Recording = {
      ...recording,
      run: { ...recording.run, state: 'interrupted', result: null },
      steps: recording.steps.filter((step) => step.seq <= 6).map((step) => (step.seq === 6 ? { ...step, status: 'in_progress', output: null } : step)),
    };
    const timeline = await replayRecording(cut, { agents: agentsOf(countingAgents().lead) });
    assert.deepEqual(path(timeline), ORDER.slice(0, 9));
    assert.equal(timeline.positions.at(-1)?.step?.status, 'in_progress');
    assert.match(timeline.root?.outcome ?? '', /^The recording ends here: the run interrupted/);
  });

  it('ends at once for a run that stopped before its first step', async () => {
    const { recording } = await recorded();
    const empty: Recording = { ...recording, run: { ...recording.run, state: 'failed', error: 'no model', result: null }, steps: [], children: new Map() };
    const engine = new ReplayEngine(await replayRecording(empty, { agents: agentsOf(countingAgents().lead) }));
    const stop = await engine.start(true);
    assert.equal(stop.index, -1);
    assert.equal(engine.position, undefined);
    assert.match(stop.description, /The recording ends here: the run failed: no model/);
  });

  it('renders a transcript with a stable line for every step', async () => {
    const { run, recording } = await recorded();
    const full = transcriptOf(run, recording.steps);
    const partial = transcriptOf(run, recording.steps.slice(0, 4));
    for (const [seq, line] of partial.lines) assert.equal(full.lines.get(seq), line);
    assert.match(full.text.split('\n')[(full.lines.get(2) ?? 0) - 1] ?? '', /^step 2 · tool lookup$/);
    assert.match(full.text, /\ncompleted · 8 steps · \d+ tokens\nanswer:\n {2}Done: /);
    assert.equal(runIdOfTranscript(transcriptUri(run.id)), run.id);
    assert.equal(runIdOfTranscript(`file:///${run.id}.keel-transcript`), undefined);
  });
});

describe('sandboxed evaluation', () => {
  const scope = { state: { turn: 2, tags: ['a'] }, args: { amount: 40 } };

  it('evaluates expressions over a frozen copy of the state', () => {
    assert.deepEqual(evaluateExpression('args.amount * 2', scope), { json: '80' });
    assert.deepEqual(evaluateExpression('({ turn: state.turn, first: state.tags[0] })', scope), { json: '{"turn":2,"first":"a"}' });
    assert.deepEqual(evaluateExpression('undefined', scope), { text: 'undefined' });
    const condition = new Condition('state.turn > 1 && args?.amount !== 41', ['state', 'args']);
    assert.equal(condition.holds(scope), true);
    assert.equal(condition.holds({ state: { turn: 1 } }), false, 'a name the data lacks is undefined');
    assert.equal(new Condition('state.turn > 5', ['state']).holds(scope), false);
    assert.throws(() => evaluateExpression('state.turn = 3', scope), /read.only|Cannot assign/);
    assert.throws(() => evaluateExpression('state.tags.push("b")', scope), /not extensible|Cannot add/);
    assert.equal(scope.state.turn, 2);
  });

  it('reaches nothing of the process, compiles no strings and stops runaway code', () => {
    for (const expression of ['process', 'require', 'setTimeout']) {
      assert.throws(() => evaluateExpression(expression, scope), /not defined|not supported|dynamic import/i, expression);
    }
    assert.deepEqual(evaluateExpression('[typeof globalThis.process, typeof globalThis.require, typeof fetch]', scope), {
      json: '["undefined","undefined","undefined"]',
    });
    assert.deepEqual(evaluateExpression('import("node:fs")', scope), { text: 'a promise (expressions are not awaited)' });
    assert.throws(() => evaluateExpression('eval("1")', scope), /Code generation from strings disallowed/);
    assert.throws(() => evaluateExpression('state.constructor.constructor("return process")()', scope), /Code generation from strings disallowed/);
    assert.throws(() => evaluateExpression('while (true) {}', scope), /timed out/);
    assert.throws(() => evaluateExpression('throw { get message() { for (;;) {} } }', scope), /./);

    assert.throws(() => new Condition('state.turn >', ['state']), /Unexpected/);
    assert.throws(() => new Condition('1); })(), (() => { for (;;) {} })(), (function () { return (1', ['state']), /timed out/);
    const looping = new Condition('(() => { for (;;) {} })()', ['state']);
    assert.throws(() => looping.holds(scope), /timed out/);
    assert.throws(() => new Condition('state.constructor.constructor("return process")()', ['state']).holds(scope), /Code generation from strings disallowed/);
    const counting = new Condition('state.turn = 3', ['state']);
    assert.throws(() => counting.holds(scope), /read.only|Cannot assign/);
    assert.equal(scope.state.turn, 2);
  });
});

describe('live debug runs and forks', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;

  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-live-'), 'keel.db'));
  });
  afterEach(() => store.close());

  it('pauses a live run before each tool call, steps back over what happened, and runs it to its end', async () => {
    const { lead, calls } = countingAgents();
    const live = new LiveRun({ runtime: (await Host.open({ cwd: tmpdir(), store })).runtime, agent: lead, agentFile: '/nowhere/lead.agent.ts', input: 'go' });
    const engine = new ReplayEngine(live.timeline, live, true);
    await live.start();

    const first = await engine.start(false);
    assert.equal(first.reason, 'breakpoint');
    assert.match(first.description, /^Before the call to lookup \(step 2\)/);
    assert.equal(engine.position?.step, null, 'the tool has not run yet');
    assert.equal(calls.tools, 0);

    const stepped = await engine.stepIn();
    assert.equal(engine.position?.seq, 3, `stopped at ${stepped.description}`);
    assert.equal(calls.tools, 1);
    await engine.stepBack();
    assert.equal(engine.position?.seq, 2);
    assert.deepEqual(engine.view(engine.position!).result, { value: 40 });

    engine.setFunctionBreakpoints([{ id: 1, name: 'pay' }]);
    const research = await engine.continue();
    assert.equal(research.reason, 'breakpoint', research.description);
    assert.match(research.description, /^Before the call to researcher \(step 4\)/);
    const note = await engine.continue();
    assert.equal(engine.position?.run.run.agent, 'researcher', `stopped before the sub-agent run's tool call: ${note.description}`);
    assert.equal(engine.timeline.frames(engine.position!).length, 2);
    const atPay = await engine.continue();
    assert.equal(atPay.reason, 'function breakpoint');
    assert.equal(engine.position?.name, 'pay');
    let stop = await engine.continue();
    while (stop.reason !== 'step') stop = await engine.continue();
    assert.match(stop.description, /^The end of the session\. The run completed: Done:/);
    assert.equal((await live.done)?.state, 'completed');
    assert.equal(engine.timeline.positions.length, 11);
  });

  it('cancels a live run when the session ends', async () => {
    const { lead } = countingAgents();
    const live = new LiveRun({ runtime: (await Host.open({ cwd: tmpdir(), store })).runtime, agent: lead, agentFile: '/nowhere/lead.agent.ts', input: 'go' });
    const engine = new ReplayEngine(live.timeline, live, true);
    await live.start();
    await engine.start(false);
    live.cancel();
    assert.equal((await live.done)?.state, 'cancelled');
  });

  it('forks a run at a tool step with an edited result, and the fork goes on live from there', async () => {
    const { lead, calls } = countingAgents({ research: false });
    const original = await (await new Runtime({ store }).start(lead, { input: 'go', agentFile: '/nowhere/lead.agent.ts' })).done;
    const steps = await store.getSteps(original.id);
    const pay = steps.find((step) => step.name === 'pay')!;
    const document = forkDocument(original, pay);
    assert.match(document, /^\/\/ Fork of run /);
    assert.deepEqual(parseForkDocument(document, pay).edit, { kind: 'tool', result: { receipt: 'R-40' } });

    const edited = document.replace('"R-40"', '"R-EDITED"').replace('"budget": null', '"budget": { "steps": 20 }');
    const fork = await forkRun(store, { runId: original.id, seq: pay.seq, document: edited }, lead);
    assert.notEqual(fork.id, original.id);
    assert.equal(fork.state, 'interrupted');
    assert.deepEqual(fork.budget, { steps: 20 });
    const before = calls.tools;
    const finished = await (await new Runtime({ store }).resume(lead, fork.id)).done;
    assert.equal(finished.state, 'completed', finished.error ?? '');
    assert.equal(finished.result, 'Done: {"receipt":"R-EDITED"} / {"value":50}');
    assert.equal(calls.tools - before, 1, 'only the lookup after the fork point ran');
    const forked = await store.getSteps(fork.id);
    assert.equal(forked.length, steps.length);
    assert.equal(forked[3]?.idempotencyKey, `${fork.id}:3:0`);
    assert.equal((await store.getRun(original.id))?.result, 'Done: {"receipt":"R-40"} / {"value":50}', 'the original is unchanged');

    await assert.rejects(
      forkRun(store, { runId: original.id, seq: pay.seq, document: edited }, countingAgents({ research: false, instructions: 'Changed.' }).lead),
      /cannot be forked there: its agent no longer matches it at step 1\./,
    );
    assert.throws(() => parseForkDocument('{ "result": 1, "error": "x" }', pay), /either "result" or "error"/);
    assert.throws(() => parseForkDocument('{ nope', pay), /not valid JSON/);
  });

  it('forks at a model step with an edited answer', async () => {
    const { lead } = countingAgents({ research: false });
    const original = await (await new Runtime({ store }).start(lead, { input: 'go', agentFile: '/nowhere/lead.agent.ts' })).done;
    const model = (await store.getSteps(original.id)).find((step) => step.seq === 3)!;
    const document = JSON.stringify({ content: 'Stop here.', toolCalls: [] });
    const fork = await forkRun(store, { runId: original.id, seq: model.seq, document }, lead);
    const finished = await (await new Runtime({ store }).resume(lead, fork.id)).done;
    assert.equal(finished.state, 'completed', finished.error ?? '');
    assert.equal(finished.result, 'Stop here.');
    assert.equal(finished.stepCount, 3);
  });
});
