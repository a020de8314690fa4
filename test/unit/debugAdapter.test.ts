import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { transcriptUri } from '../../src/protocol/debug';
import { REPO_ROOT, testEnv } from '../support/processes';
import { REPLAY_ORDER, writeReplayAgent } from '../support/replayAgentFile';
import { useTempDirs } from '../support/tempDir';

const ADAPTER = join(REPO_ROOT, 'dist', 'debugAdapter.js');

describe('debug adapter (DAP, in its own process)', function () {
  this.timeout(30_000);
  const tempDir = useTempDirs();
  let dir: string;
  let databasePath: string;
  let agentFile: string;
  let run: RunRecord;
  let client: DebugClient;

  /** Records a run of an agent file in the session's database. */
  async function record(file: string): Promise<RunRecord> {
    const store = openSqliteStore(databasePath);
    try {
      const { agent } = await loadAgentFile(file);
      return await (await new Runtime({ store }).start(agent, { input: 'go', agentFile: file })).done;
    } finally {
      await store.close();
    }
  }

  beforeEach(async () => {
    dir = tempDir('keel-dap-');
    databasePath = join(dir, 'keel.db');
    agentFile = writeReplayAgent(dir);
    run = await record(agentFile);
    assert.equal(run.state, 'completed', run.error ?? '');
    client = new DebugClient(process.execPath, ADAPTER, 'keel', { cwd: dir, env: testEnv() }, true);
    client.defaultTimeout = 15_000;
    await client.start();
  });

  afterEach(async () => {
    await client.stop().catch(() => undefined);
  });

  /** Launches and waits for the first stop. */
  async function launch(args: Record<string, unknown>, configure: () => Promise<unknown> = () => Promise.resolve()): Promise<DebugProtocol.StoppedEvent> {
    const [, , stopped] = await Promise.all([
      client.waitForEvent('initialized').then(configure).then(() => client.configurationDoneRequest()),
      client.launch({ databasePath, ...args }),
      client.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    return stopped;
  }

  async function top(): Promise<DebugProtocol.StackFrame[]> {
    return (await client.stackTraceRequest({ threadId: 1 })).body.stackFrames;
  }

  /** `agent:seq` of the top frame. */
  async function where(): Promise<string> {
    const [frame] = await top();
    const match = /^(\w+) · step (\d+)/.exec(frame?.name ?? '');
    return match ? `${match[1]}:${match[2]}` : (frame?.name ?? 'nowhere');
  }

  async function after(request: () => Promise<unknown>): Promise<DebugProtocol.StoppedEvent> {
    const [, stopped] = await Promise.all([request(), client.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>]);
    return stopped;
  }

  async function scope(name: string): Promise<Record<string, string>> {
    const [frame] = await top();
    const scopes = (await client.scopesRequest({ frameId: frame?.id ?? 0 })).body.scopes;
    const found = scopes.find((candidate) => candidate.name === name);
    assert.ok(found, `no scope ${name} in ${scopes.map((candidate) => candidate.name).join(', ')}`);
    const variables = (await client.variablesRequest({ variablesReference: found.variablesReference })).body.variables;
    return Object.fromEntries(variables.map((variable) => [variable.name, variable.value]));
  }

  it('advertises step back, reverse continue, function, conditional and exception breakpoints and goto', async () => {
    const { body } = await client.initializeRequest();
    assert.equal(body?.supportsStepBack, true);
    assert.equal(body?.supportsFunctionBreakpoints, true);
    assert.equal(body?.supportsConditionalBreakpoints, true);
    assert.equal(body?.supportsGotoTargetsRequest, true);
    assert.deepEqual(
      body?.exceptionBreakpointFilters?.map((filter) => [filter.filter, filter.default]),
      [
        ['divergence', true],
        ['errors', false],
        ['flags', false],
      ],
    );
  });

  it('replays a run: stops at its first step in the transcript, steps over, in, out and back, and continues', async () => {
    const entry = await launch({ runId: run.id.slice(0, 14) });
    assert.equal(entry.body.reason, 'entry');
    const threads = (await client.threadsRequest()).body.threads;
    assert.deepEqual(threads.map((thread) => thread.name), [`lead ${run.id}`]);
    const [frame] = await top();
    assert.equal(frame?.source?.path, transcriptUri(run.id));
    assert.equal(frame?.line, 5, 'the first step block follows the header and the input');
    const text = ((await client.customRequest('keel/transcript', { runId: run.id })).body as { text: string }).text;
    assert.match(text.split('\n')[4] ?? '', /^step 1 · model keel\.scripted:scripted$/);

    const visited = [await where()];
    for (let i = 1; i < REPLAY_ORDER.length; i++) {
      await after(() => client.stepInRequest({ threadId: 1 }));
      visited.push(await where());
    }
    assert.deepEqual(visited, [...REPLAY_ORDER]);

    await after(() => client.reverseContinueRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:1');
    for (let i = 0; i < 3; i++) await after(() => client.nextRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:4');
    await after(() => client.nextRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:5', 'next steps over the sub-agent run');
    await after(() => client.stepBackRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:4');
    await after(() => client.stepInRequest({ threadId: 1 }));
    assert.equal(await where(), 'researcher:1');
    const frames = await top();
    assert.deepEqual(
      frames.map((candidate) => candidate.name),
      ['researcher · step 1 · model', 'lead · step 4 · researcher'],
    );
    assert.match(frames[0]?.source?.path ?? '', /^keel-transcript:\/run_[0-9a-f]{22}\.keel-transcript$/);
    await after(() => client.stepOutRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:5');
    const end = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(end.body.reason, 'step');
    assert.equal(await where(), 'lead:8');
    assert.match((end.body as { description?: string }).description ?? '', /Replayed as recorded: the run completed/);
  });

  it('shows the tool call, messages, budget, flags and state of a step as variables', async () => {
    await launch({ runId: run.id });
    await after(() => client.stepInRequest({ threadId: 1 }));
    const call = await scope('Tool call');
    assert.equal(call['tool'], '"lookup"');
    assert.equal(call['arguments'], '{n}');
    assert.equal(call['result'], '{value}', 'what the tool returned, as it returned it');
    assert.equal(call['content'], '"{\\"value\\":40}"', 'the text the model read');
    assert.equal(call['error'], 'null');
    const messages = await scope('Messages');
    assert.deepEqual(Object.keys(messages), ['0', '1', '2']);
    const budget = await scope('Budget');
    assert.deepEqual(Object.keys(budget), ['limits', 'spent', 'left']);
    const state = await scope('State');
    assert.equal(state['turn'], '0');
    assert.equal(state['toolCall'], '{index, of}');
    assert.deepEqual(await scope('Flags'), {});
    const [frame] = await top();
    const scopes = (await client.scopesRequest({ frameId: frame?.id ?? 0 })).body.scopes;
    const toolScope = scopes.find((candidate) => candidate.name === 'Tool call')!;
    const variables = (await client.variablesRequest({ variablesReference: toolScope.variablesReference })).body.variables;
    const result = variables.find((variable) => variable.name === 'result')!;
    const inner = (await client.variablesRequest({ variablesReference: result.variablesReference })).body.variables;
    assert.deepEqual(
      inner.map((variable) => [variable.name, variable.value]),
      [['value', '40']],
    );
  });

  it('evaluates read-only expressions over the step in the Debug Console', async () => {
    await launch({ runId: run.id });
    await after(() => client.stepInRequest({ threadId: 1 }));
    const [frame] = await top();
    const evaluate = (expression: string) => client.evaluateRequest({ expression, frameId: frame?.id ?? 0, context: 'repl' });
    assert.equal((await evaluate('args.n * 2')).body.result, '8');
    assert.equal((await evaluate('messages.length')).body.result, '3');
    assert.equal((await evaluate('budget.spent.steps')).body.result, '2');
    // Each name evaluates to what the Variables view shows under it: `result` is the tool's value.
    assert.equal((await evaluate('result.value')).body.result, '40');
    assert.equal((await evaluate('JSON.parse(content).value === result.value')).body.result, 'true');
    const object = await evaluate('result');
    assert.equal(object.body.result, '{value}');
    assert.ok(object.body.variablesReference > 0);
    await assert.rejects(evaluate('args.n = 5'), /read only|Cannot assign/);
    await assert.rejects(evaluate('process.exit(1)'), /process is not defined/);
    await assert.rejects(evaluate('while (true) {}'), /timed out/);
  });

  it('stops at function breakpoints by tool name with conditions, line breakpoints, and goes to a line', async () => {
    let ids: (number | undefined)[] = [];
    await launch({ runId: run.id }, async () => {
      const response = await client.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'lookup', condition: 'args.n === 5' }, { name: 'note' }] });
      ids = response.body.breakpoints.map((breakpoint) => breakpoint.id);
      assert.deepEqual(response.body.breakpoints.map((breakpoint) => breakpoint.verified), [true, true]);
    });
    const note = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(note.body.reason, 'function breakpoint');
    assert.deepEqual(note.body.hitBreakpointIds, [ids[1]]);
    assert.equal(await where(), 'researcher:2');
    const lookup = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(lookup.body.reason, 'function breakpoint');
    assert.equal(await where(), 'lead:7');
    await after(() => client.reverseContinueRequest({ threadId: 1 }));
    assert.equal(await where(), 'researcher:2');

    await client.setFunctionBreakpointsRequest({ breakpoints: [] });
    const transcript = ((await client.customRequest('keel/transcript', { runId: run.id })).body as { text: string }).text.split('\n');
    const payLine = transcript.findIndex((line) => line === 'step 6 · tool pay') + 1;
    const source = { path: transcriptUri(run.id) };
    const set = await client.setBreakpointsRequest({ source, breakpoints: [{ line: payLine + 1 }] });
    assert.equal(set.body.breakpoints[0]?.verified, true);
    const elsewhere = await client.setBreakpointsRequest({ source: { path: agentFile }, breakpoints: [{ line: 3 }] });
    assert.deepEqual(elsewhere.body.breakpoints.map(({ verified, message }) => [verified, message]), [[false, 'Keel breakpoints go in run transcripts.']]);
    const hit = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(hit.body.reason, 'breakpoint');
    assert.equal(await where(), 'lead:6');
    await client.setBreakpointsRequest({ source, breakpoints: [] });

    const targets = (await client.gotoTargetsRequest({ source, line: 6 })).body.targets;
    assert.equal(targets[0]?.label, 'step 1');
    const went = await after(() => client.gotoRequest({ threadId: 1, targetId: targets[0]?.id ?? 0 }));
    assert.equal(went.body.reason, 'goto');
    assert.equal(await where(), 'lead:1');
    const position = (await client.customRequest('keel/position', {})).body as { seq: number; index: number; forkDocument: string };
    assert.equal(position.seq, 1);
    assert.match(position.forkDocument, /"content": "Looking it up\."/);
  });

  it('stops where the agent no longer matches the recording, as an exception', async () => {
    writeReplayAgent(dir, { instructions: 'Other instructions.' });
    const stopped = await launch({ runId: run.id, stopOnEntry: false });
    assert.equal(stopped.body.reason, 'exception');
    assert.equal(await where(), 'lead:1');
    const info = await client.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'divergence');
    assert.match(info.body.description ?? '', /no longer matches its agent at step 1/);
  });

  it('replays from the recording alone when asked', async () => {
    const entry = await launch({ runId: run.id, verify: false });
    assert.equal(entry.body.reason, 'entry');
    const output = await scope('Model output');
    assert.equal(output['finishReason'], '"tool_calls"');
    assert.match(output['message'] ?? '', /^\{role, content, toolCalls/);
    assert.match((await scope('State'))['unchecked'] ?? '', /the launch configuration says .*verify.*: false/);
    const end = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(end.body.reason, 'step', 'nothing failed or diverged');
    assert.equal(await where(), 'lead:8');
  });

  it('stops at failed steps and at flagged steps with the exception filters on, and says why', async () => {
    const failing = await record(writeReplayAgent(tempDir('keel-dap-failing-'), { amount: 5000, secondLookup: 4 }));
    await launch({ runId: failing.id }, async () => {
      const set = await client.setExceptionBreakpointsRequest({ filters: ['errors', 'flags'] });
      assert.deepEqual(set.body?.breakpoints?.map((breakpoint) => breakpoint.verified), [true, true]);
    });
    const failed = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(failed.body.reason, 'exception');
    assert.equal(await where(), 'lead:6');
    const error = await client.exceptionInfoRequest({ threadId: 1 });
    assert.equal(error.body.exceptionId, 'errors');
    assert.match(error.body.description ?? '', /declined/);
    const failedCall = await scope('Tool call');
    assert.equal(failedCall['result'], 'null');
    assert.match(failedCall['error'] ?? '', /declined/);

    const flagged = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(flagged.body.reason, 'exception');
    assert.equal(await where(), 'lead:7');
    const flag = await client.exceptionInfoRequest({ threadId: 1 });
    assert.equal(flag.body.exceptionId, 'flags');
    assert.match(flag.body.description ?? '', /lookup/);
    assert.deepEqual(Object.keys(await scope('Flags')), ['0']);

    await client.setExceptionBreakpointsRequest({ filters: [] });
    await after(() => client.gotoRequest({ threadId: 1, targetId: 1 }));
    const end = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(end.body.reason, 'step', 'with the filters off, nothing stops the replay');
  });

  it('refuses a launch without a run or an agent, and a run that does not exist', async () => {
    await client.initializeRequest();
    await assert.rejects(client.launchRequest({ databasePath } as DebugProtocol.LaunchRequestArguments), /needs "runId"/);
    await assert.rejects(client.launchRequest({ databasePath, runId: 'run_nope' } as DebugProtocol.LaunchRequestArguments), /No run has an id starting with "run_nope"/);
  });

  it('runs an agent live, pausing before each tool call, and cancels it on disconnect', async () => {
    const first = await launch({ agent: agentFile, input: 'live' });
    assert.equal(first.body.reason, 'breakpoint');
    assert.match((first.body as { description?: string }).description ?? '', /^Before the call to lookup \(step 2\)/);
    const call = await scope('Tool call');
    assert.equal(call['result'], 'null', 'the tool has not run yet');
    await after(() => client.nextRequest({ threadId: 1 }));
    assert.equal(await where(), 'lead:3');
    await after(() => client.stepBackRequest({ threadId: 1 }));
    assert.equal((await scope('Tool call'))['result'], '{value}', 'the step back shows what the tool returned');
    client.pauseRequest({ threadId: 1 }).catch(() => undefined);
    const paused = await after(() => client.continueRequest({ threadId: 1 }));
    assert.equal(paused.body.reason, 'pause');
    const position = (await client.customRequest('keel/position', {})).body as { rootRunId: string };
    await client.disconnectRequest({});
    const store = openSqliteStore(databasePath);
    try {
      const live = await store.getRun(position.rootRunId);
      assert.equal(live?.state, 'cancelled');
    } finally {
      await store.close();
    }
  });

  it('runs a live session to its end and terminates on request', async () => {
    let changes = 0;
    client.on('keel/runChanged', () => (changes += 1));
    const end = await launch({ agent: agentFile, input: 'live', pauseBeforeTools: false });
    assert.equal(end.body.reason, 'step');
    assert.match((end.body as { description?: string }).description ?? '', /The run completed: Done after 2 results\./);
    assert.equal(await where(), 'lead:8');
    assert.ok(changes > 0, 'the session told of the run changing');
    await client.terminateRequest({});
  });
});
