import * as assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as vscode from 'vscode';
import { writeReplayAgent } from '../support/replayAgentFile';
import { until } from '../support/until';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly agent: string;
  readonly state: string;
  readonly result: string | null;
  readonly error: string | null;
  readonly stepCount: number;
}

/** What the adapter's `keel/position` request says of the step a session is stopped at. */
interface Position {
  readonly runId: string;
  readonly rootRunId: string;
  readonly seq: number;
  readonly kind: string;
  readonly name: string;
  readonly forkDocument: string | null;
}

interface Stopped {
  readonly reason: string;
  readonly description?: string;
}

describe('Keel in VS Code: the replay debugger', () => {
  let agentFile: string;
  let run: Run;
  const stops: Stopped[] = [];
  /**
   * The session that announced the last stop. Not `vscode.debug.activeDebugSession`: the tracker
   * hears a stop before VS Code focuses the session it came from, so right after a stop the active
   * session can still be the previous test's, already ended.
   */
  let stoppedSession: vscode.DebugSession | undefined;
  const waiters: (() => void)[] = [];
  let tracker: vscode.Disposable;
  /** The Keel debug sessions started and not ended yet. */
  const running = new Set<vscode.DebugSession>();
  let sessions: vscode.Disposable[] = [];

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
    agentFile = writeReplayAgent(folder.uri.fsPath);
    // Every stop the adapter announces, as VS Code receives it.
    tracker = vscode.debug.registerDebugAdapterTrackerFactory('keel', {
      createDebugAdapterTracker: (from) => ({
        onDidSendMessage: (message: { type?: string; event?: string; body?: Stopped }) => {
          if (message.type !== 'event' || message.event !== 'stopped' || !message.body) return;
          stoppedSession = from;
          stops.push(message.body);
          for (const wake of waiters.splice(0)) wake();
        },
      }),
    });
    sessions = [
      vscode.debug.onDidStartDebugSession((started) => {
        if (started.type === 'keel') running.add(started);
      }),
      vscode.debug.onDidTerminateDebugSession((ended) => running.delete(ended)),
    ];
    const recorded = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(agentFile), 'go');
    assert.ok(recorded, 'keel.runAgent returned no run');
    assert.equal(recorded.state, 'completed', recorded.error ?? '');
    run = recorded;
  });

  afterEach(async () => {
    for (const session of running) await vscode.debug.stopDebugging(session);
    await until(() => (running.size === 0 ? true : undefined), 'the debug sessions to end');
    vscode.debug.removeBreakpoints(vscode.debug.breakpoints);
  });

  after(() => {
    tracker.dispose();
    for (const subscription of sessions) subscription.dispose();
    rmSync(agentFile, { force: true });
  });

  /** The next stop after `count` stops were seen. */
  async function stopAfter(count: number): Promise<Stopped> {
    const deadline = Date.now() + 30_000;
    while (stops.length <= count) {
      if (Date.now() > deadline) throw new Error(`no stop came (${count} before)`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
    return stops[count]!;
  }

  function session(): vscode.DebugSession {
    assert.ok(stoppedSession, 'no Keel debug session has stopped');
    return stoppedSession;
  }

  /** A DAP request to the active session, naming the request when it fails. */
  async function request<T>(command: string, args?: unknown): Promise<T> {
    try {
      return (await session().customRequest(command, args)) as T;
    } catch (error) {
      throw new Error(`${command} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Sends a DAP request that moves the session, and waits for where it stops. */
  async function move(command: string): Promise<Stopped> {
    const before = stops.length;
    await request(command, { threadId: 1 });
    return stopAfter(before);
  }

  function position(): Promise<Position> {
    return request<Position>('keel/position');
  }

  async function variables(scopeName: string): Promise<Record<string, string>> {
    const { stackFrames } = await request<{ stackFrames: { id: number }[] }>('stackTrace', { threadId: 1 });
    const { scopes } = await request<{ scopes: { name: string; variablesReference: number }[] }>('scopes', { frameId: stackFrames[0]?.id });
    const scope = scopes.find((candidate) => candidate.name === scopeName);
    assert.ok(scope, `no ${scopeName} scope`);
    const list = await request<{ variables: { name: string; value: string }[] }>('variables', { variablesReference: scope.variablesReference });
    return Object.fromEntries(list.variables.map((variable) => [variable.name, variable.value]));
  }

  it('replays a run from the Runs view, shows its transcript, steps, steps back and reads variables', async () => {
    const before = stops.length;
    assert.equal(await vscode.commands.executeCommand('keel.replayRun', { kind: 'run', runId: run.id }), true);
    const entry = await stopAfter(before);
    assert.equal(entry.reason, 'entry');
    assert.equal((await position()).seq, 1);

    // The top frame's source: the run's transcript, a read-only virtual document, open at the step.
    const editor = await until(() => {
      const active = vscode.window.activeTextEditor;
      return active?.document.uri.scheme === 'keel-transcript' ? active : undefined;
    }, 'the transcript to open');
    assert.ok(editor.document.uri.path.endsWith(`${run.id}.keel-transcript`));
    assert.equal(editor.document.lineAt(editor.selection.active.line).text, 'step 1 · model keel.scripted:scripted');

    await move('next');
    const lookup = await position();
    assert.deepEqual([lookup.seq, lookup.kind, lookup.name], [2, 'tool', 'lookup']);
    const call = await variables('Tool call');
    assert.equal(call['arguments'], '{n}');
    assert.equal(call['result'], '{value}', 'the tool’s value, as the Debug Console reads `result`');
    assert.deepEqual(Object.keys(await variables('Messages')), ['0', '1', '2']);
    assert.equal((await variables('State'))['turn'], '0');

    await move('next');
    await move('next');
    await move('next');
    assert.equal((await position()).seq, 5, 'next steps over the sub-agent run');
    const back = await move('stepBack');
    assert.equal(back.reason, 'step');
    assert.equal((await position()).seq, 4);
    await move('stepIn');
    const inside = await position();
    assert.notEqual(inside.runId, run.id, 'stepped into the sub-agent run');
    assert.equal(inside.seq, 1);
    await move('reverseContinue');
    assert.equal((await position()).seq, 1);

    const evaluated = await request<{ result: string }>('evaluate', { expression: 'state.turn + 1', context: 'repl' });
    assert.equal(evaluated.result, '1');
  });

  it('stops at a function breakpoint on a tool, then forks the run with an edited result and shows the diff and the comparison with the original', async () => {
    vscode.debug.addBreakpoints([new vscode.FunctionBreakpoint('pay')]);
    const before = stops.length;
    assert.equal(await vscode.commands.executeCommand('keel.replayRun', run.id), true);
    await stopAfter(before);
    const hit = await move('continue');
    assert.equal(hit.reason, 'function breakpoint', hit.description);
    const at = await position();
    assert.deepEqual([at.seq, at.name], [6, 'pay']);
    assert.ok(at.forkDocument, 'the stopped step has a fork document');
    assert.match(at.forkDocument, /"result": \{\s+"receipt": "R-40"/);

    // Keel: Fork Run from Here opens the step as JSON to edit, with Start Fork above it.
    const draftUri = await vscode.commands.executeCommand<vscode.Uri | undefined>('keel.forkRun');
    assert.ok(draftUri, 'keel.forkRun opened no fork document');
    const draft = await until(() => vscode.workspace.textDocuments.find((document) => document.uri.toString() === draftUri.toString()), 'the fork document to open');
    assert.equal(draft.languageId, 'jsonc');
    assert.equal(draft.getText(), at.forkDocument);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', draftUri);
    assert.deepEqual(
      lenses.map((lens) => lens.command?.title),
      [`$(repo-forked) Start Fork of ${run.id} at step 6`, 'Discard'],
    );
    const edit = new vscode.WorkspaceEdit();
    const receipt = draft.getText().indexOf('"R-40"');
    edit.replace(draftUri, new vscode.Range(draft.positionAt(receipt), draft.positionAt(receipt + '"R-40"'.length)), '"R-FORKED"');
    assert.ok(await vscode.workspace.applyEdit(edit));

    const forked = await vscode.commands.executeCommand<{ original: string; fork: Run } | undefined>('keel.startFork', draftUri);
    assert.ok(forked, 'keel.startFork forked nothing');
    assert.equal(forked.original, run.id);
    assert.notEqual(forked.fork.id, run.id);
    assert.equal(forked.fork.state, 'completed', forked.fork.error ?? '');
    assert.equal(forked.fork.stepCount, run.stepCount);
    const tabs = vscode.window.tabGroups.all.flatMap((group) => group.tabs);
    assert.ok(
      !tabs.some((tab) => tab.input instanceof vscode.TabInputText && tab.input.uri.toString() === draftUri.toString()),
      'the fork document was closed once the fork started',
    );

    const diff = await until(
      () =>
        vscode.window.tabGroups.all
          .flatMap((group) => group.tabs)
          .map((tab) => tab.input)
          .find((input): input is vscode.TabInputTextDiff => input instanceof vscode.TabInputTextDiff && input.modified.path.includes(forked.fork.id)),
      'the diff of the fork against the original',
    );
    assert.ok(diff.original.path.endsWith(`${run.id}.keel-transcript`));
    const left = await vscode.workspace.openTextDocument(diff.original);
    const right = await vscode.workspace.openTextDocument(diff.modified);
    assert.match(left.getText(), /result: \{"receipt":"R-40"\}/);
    assert.match(right.getText(), /result: \{"receipt":"R-FORKED"\}/);
    assert.match(right.getText(), /\ncompleted · 8 steps · /);

    // The fork's comparison with the original opens after the diff, and again from the diff's title bar.
    const compared = () =>
      until(async () => {
        const views = await vscode.commands.executeCommand<readonly ({ runA: string; runB: string; first: string | null } | null)[]>('keel._test.comparisonViews');
        return views.find((shown) => shown?.runA === run.id && shown.runB === forked.fork.id) ?? undefined;
      }, 'the comparison of the fork with the original');
    assert.match((await compared()).first ?? '', /^The tool returned something different at step \d+ \/ \d+\.$/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    await until(async () => ((await vscode.commands.executeCommand<readonly unknown[]>('keel._test.comparisonViews')).length === 0 ? true : undefined), 'the comparison closed');
    await vscode.commands.executeCommand('vscode.diff', diff.original, diff.modified);
    await vscode.commands.executeCommand('keel.compareTranscriptRuns');
    await compared();
  });

  it('offers a replay of each recent run and each agent file, live, in Run and Debug, each once, named by agent, input and time', async () => {
    const dynamic = await vscode.commands.executeCommand<vscode.DebugConfiguration[]>('keel._test.launchConfigurations');
    const names = dynamic.map((config) => config.name);
    assert.equal(new Set(names).size, names.length, `listed twice: ${names.join(', ')}`);
    const replay = dynamic.find((config) => config['runId'] === run.id);
    assert.ok(replay, `no replay of ${run.id} in ${names.join(', ')}`);
    assert.equal(replay.name.replace(/ · (just now|\d+ (s|min) ago) · /, ' · <age> · '), `Replay lead "go" · completed · <age> · ${run.id.slice(-6)}`);
    const live = dynamic.find((config) => config['agent'] === agentFile);
    assert.equal(live?.name, 'Debug lead.agent.ts live');

    const before = stops.length;
    assert.equal(await vscode.debug.startDebugging(vscode.workspace.workspaceFolders?.[0], replay), true);
    assert.equal((await stopAfter(before)).reason, 'entry');
    const at = await position();
    assert.deepEqual([at.runId, at.seq], [run.id, 1]);
  });

  it('runs an agent live, stops before its first tool call, and cancels the run when stopped', async () => {
    const before = stops.length;
    const started = await vscode.debug.startDebugging(vscode.workspace.workspaceFolders?.[0], {
      type: 'keel',
      request: 'launch',
      name: 'Debug lead live',
      agent: agentFile,
      input: 'live',
    });
    assert.equal(started, true);
    const first = await stopAfter(before);
    assert.equal(first.reason, 'breakpoint');
    assert.match(first.description ?? '', /^Before the call to lookup \(step 2\)/);
    const live = await position();
    assert.equal((await variables('Tool call'))['result'], 'null', 'the tool has not run yet');
    await vscode.debug.stopDebugging(session());
    const cancelled = await until(async () => {
      const found = await vscode.commands.executeCommand<readonly { runId: string; state: string }[]>('keel._test.runsView');
      await vscode.commands.executeCommand('keel.refreshRuns');
      return found.find((item) => item.runId === live.rootRunId && item.state === 'cancelled');
    }, 'the live run to end cancelled');
    assert.equal(cancelled.state, 'cancelled');
  });
});
