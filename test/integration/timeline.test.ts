import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { gatedAgent, type GatedAgent } from '../vscode/interruptedRun';
import { EXAMPLE_INPUT } from '../vscode/testWorkspace';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly state: string;
  readonly error: string | null;
}

/** One Trace timeline, as `keel._test.traceViews` reports it. */
interface TraceView {
  readonly runId: string;
  readonly title: string;
  readonly active: boolean;
  readonly live: boolean;
  readonly spanCount: number;
  readonly shown: {
    readonly runId: string;
    readonly spanCount: number;
    readonly rowCount: number;
    readonly rowsInDom: number;
    readonly selectedSpanId: string | null;
  } | null;
}

interface RunsViewItem {
  readonly runId: string;
  readonly label: string;
  readonly state: string;
}

describe('Keel in VS Code: the Trace timeline', () => {
  let workspace: string;
  const agents: GatedAgent[] = [];

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
  });

  after(async () => {
    for (const agent of agents.splice(0)) {
      agent.open();
      agent.remove();
    }
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('is offered on every run in the Runs view, and as Keel: Show Trace… in the palette', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const command of ['keel.showTrace', 'keel.chooseTrace', 'keel._test.traceViews']) {
      assert.ok(commands.includes(command), `${command} is not registered`);
    }
    const manifest = vscode.extensions.getExtension('keel.keel-agents')?.packageJSON as {
      contributes: { commands: { command: string; title: string }[]; menus: Record<string, { command: string; when?: string; group?: string }[]> };
    };
    assert.equal(manifest.contributes.commands.find((entry) => entry.command === 'keel.chooseTrace')?.title, 'Show Trace…');
    const onRuns = manifest.contributes.menus['view/item/context']?.filter((entry) => entry.command === 'keel.showTrace') ?? [];
    assert.ok(
      onRuns.some((entry) => entry.group?.startsWith('inline') && entry.when?.includes('viewItem =~ /^run\\./')),
      'Show Trace is not an inline action on runs',
    );
  });

  it('opens the trace of a completed run with keel.showTrace, and its webview draws every span', async () => {
    const run = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(join(workspace, 'travel.agent.ts')), EXAMPLE_INPUT);
    assert.ok(run, 'keel.runAgent returned no run');
    assert.equal(run.state, 'completed', `the run ended ${run.state}: ${run.error ?? ''}`);

    await vscode.commands.executeCommand('keel.showTrace', run.id);
    const view = await waitForView((candidate) => candidate.runId === run.id && candidate.shown !== null, 'the timeline to draw the trace');
    // The run's span and one per journal step (5 in the example), at least.
    assert.ok(view.spanCount >= 6, `the trace has ${view.spanCount} spans`);
    assert.deepEqual(view.shown, { runId: run.id, spanCount: view.spanCount, rowCount: view.spanCount, rowsInDom: view.spanCount, selectedSpanId: null });
    assert.equal(view.title, `travel · ${run.id.slice(-6)}`);
    assert.equal(view.live, false);
    assert.ok(view.active, 'the timeline is not the active editor');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.equal(tab?.label, `Trace · travel · ${run.id.slice(-6)}`);
    assert.ok(tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('keel.trace'), 'the active tab is not a Trace timeline');

    // Showing the same run again brings its panel forward rather than opening a second one.
    await vscode.commands.executeCommand('workbench.action.files.newUntitledFile');
    await vscode.commands.executeCommand('keel.showTrace', run.id);
    await waitForView((candidate) => candidate.runId === run.id && candidate.active, 'the timeline to come forward');
    assert.equal((await traceViews()).filter((candidate) => candidate.runId === run.id).length, 1);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('offers the recent runs in Keel: Show Trace… and opens the one picked', async () => {
    const [newest] = await vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
    assert.ok(newest, 'there is no run to pick');
    const picked = vscode.commands.executeCommand('keel.chooseTrace');
    let settled = false;
    void Promise.resolve(picked).finally(() => (settled = true));
    // The quick pick lists the newest run first: accept it once it shows.
    for (let tries = 0; !settled && tries < 100; tries++) {
      await delay(100);
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    }
    await picked;
    await waitForView((candidate) => candidate.runId === newest.runId && candidate.shown !== null, 'the picked run to be drawn');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('is live while a run goes: open spans first, then the rest as the run finishes', async () => {
    const slow = gatedAgent(workspace, 'tracelive', 'idempotent');
    agents.push(slow);
    slow.close();
    const running = vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(slow.file), 'go');
    const deadline = Date.now() + 30_000;
    while (slow.calls().length === 0 && Date.now() < deadline) await delay(100);
    assert.equal(slow.calls().length, 1, 'the tool did not start');
    const [runId] = slow.calls()[0]?.split(':') ?? [];
    assert.ok(runId);

    await vscode.commands.executeCommand('keel.showTrace', runId);
    const live = await waitForView((candidate) => candidate.runId === runId && candidate.shown !== null, 'the live trace to be drawn');
    assert.equal(live.live, true);
    assert.equal(live.shown?.spanCount, live.spanCount);
    // The run, its model call and the tool call still going.
    assert.ok(live.spanCount >= 3, `the live trace has ${live.spanCount} spans`);

    slow.open();
    const run = await running;
    assert.equal(run?.state, 'completed');
    const done = await waitForView(
      (candidate) => candidate.runId === runId && !candidate.live && candidate.shown?.spanCount === candidate.spanCount && candidate.spanCount > live.spanCount,
      'the finished run to be patched into the timeline',
    );
    assert.equal(done.shown?.rowCount, done.spanCount);
  });
});

function traceViews(): Thenable<readonly TraceView[]> {
  return vscode.commands.executeCommand<readonly TraceView[]>('keel._test.traceViews');
}

async function waitForView(test: (view: TraceView) => boolean, what: string): Promise<TraceView> {
  const deadline = Date.now() + 30_000;
  let views: readonly TraceView[] = [];
  while (Date.now() < deadline) {
    views = await traceViews();
    const found = views.find(test);
    if (found) return found;
    await delay(100);
  }
  throw new Error(`Timed out waiting for ${what}; the Trace timelines are ${JSON.stringify(views)}`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
