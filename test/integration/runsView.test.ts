import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { spenderAgent, type SpenderAgent } from '../vscode/spenderAgent';

/** The parts of a run these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly state: string;
  readonly error: string | null;
}

interface RunsViewItem {
  readonly runId: string;
  readonly label: string;
  readonly description: string;
}

interface StepRow {
  readonly label: string;
  readonly description: string;
  readonly command: string;
  readonly arguments: readonly unknown[];
}

const INPUT = 'Compare the fares from NYC to LIS in December';

/**
 * The Runs view tells runs apart and nests sub-agent runs: a run of the spender (which asks the
 * researcher sub-agent at its fourth step) is one row, with the researcher's run under it; steps
 * name their tool once and open the Run view at that step; Filter Runs… narrows the view.
 */
describe('Keel in VS Code: the Runs view', () => {
  let spender: SpenderAgent;
  let run: Run;

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
    spender = spenderAgent(folder.uri.fsPath);
    const started = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(spender.file), INPUT);
    assert.ok(started, 'keel.runAgent returned no run');
    assert.equal(started.state, 'completed', `the run ended ${started.state}: ${started.error ?? ''}`);
    run = started;
  });

  after(async () => {
    await vscode.commands.executeCommand('keel.clearRunsFilter');
    spender.remove();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('shows each run with its input and age, and a sub-agent run under the run that started it, not beside it', async () => {
    await vscode.commands.executeCommand('keel.refreshRuns');
    const rows = await runsView();
    const row = rows.find((candidate) => candidate.runId === run.id);
    assert.ok(row, `the run ${run.id} is not a top-level row`);
    assert.match(row.description, /^"Compare the fares from NYC to LIS in De…" · completed · \d+ steps · [^·]+ · (just now|\d+ s ago)$/);
    assert.ok(!rows.some((candidate) => candidate.label === 'researcher'), 'the sub-agent run is not a top-level row');
    const subAgents = await vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsViewSubAgents', run.id);
    assert.equal(subAgents.length, 1);
    assert.equal(subAgents[0]?.label, 'researcher');
    assert.match(subAgents[0]?.description ?? '', /^".+" · completed · 1 step · /);
  });

  it('names a step’s tool once, and a click on a step opens the Run view at that step', async () => {
    const steps = await vscode.commands.executeCommand<readonly StepRow[]>('keel._test.runsViewSteps', run.id);
    const lookup = steps.find((step) => step.label === '2 · slow_lookup');
    assert.ok(lookup, steps.map((step) => step.label).join(', '));
    assert.match(lookup.description, /^→ fare table 0: LIS 598/);
    assert.deepEqual([lookup.command, lookup.arguments], ['keel.showRun', [run.id, 2]]);
    await vscode.commands.executeCommand(lookup.command, ...lookup.arguments);
    const deadline = Date.now() + 20_000;
    const isRunView = (tab: vscode.Tab | undefined) => tab?.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('keel.run') && tab.label.startsWith('spender');
    while (!isRunView(vscode.window.tabGroups.activeTabGroup.activeTab)) {
      assert.ok(Date.now() < deadline, `the active tab is ${vscode.window.tabGroups.activeTabGroup.activeTab?.label ?? 'none'}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('filters by agent, state and words, says so above the runs, and says what is wrong with a bad query', async () => {
    await vscode.commands.executeCommand('keel.filterRuns', 'agent:spender state:completed fares');
    const rows = await runsView();
    assert.ok(rows.length >= 1 && rows.every((row) => row.label === 'spender'), rows.map((row) => row.label).join(', '));
    assert.match(await message(), /^Filtered by “agent:spender state:completed fares”: \d+ of \d+ runs\.$/);

    await vscode.commands.executeCommand('keel.filterRuns', 'state:failed agent:spender');
    assert.deepEqual(await runsView(), []);

    // A bad query changes nothing.
    await vscode.commands.executeCommand('keel.filterRuns', 'state:broken');
    assert.deepEqual(await runsView(), []);
    assert.match(await message(), /“state:failed agent:spender”/);

    await vscode.commands.executeCommand('keel.clearRunsFilter');
    assert.equal(await message(), '');
    assert.ok((await runsView()).some((row) => row.runId === run.id));
  });

  it('groups the run’s context menu: show, control, debug, compare', () => {
    const manifest = vscode.extensions.getExtension('keel.keel-agents')?.packageJSON as {
      contributes: { menus: Record<string, { command: string; when?: string; group?: string }[]> };
    };
    const onRuns = (manifest.contributes.menus['view/item/context'] ?? []).filter(
      (entry) => entry.when?.includes('viewItem =~ /^run') === true || entry.when?.includes('viewItem == run.') === true,
    );
    const menu = onRuns.filter((entry) => !entry.group?.startsWith('inline'));
    assert.ok(menu.length > 0);
    for (const entry of menu) assert.match(entry.group ?? '', /^\d_(show|control|debug|compare)@\d+$/, `${entry.command} has no group`);
  });
});

function runsView(): Thenable<readonly RunsViewItem[]> {
  return vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
}

function message(): Thenable<string> {
  return vscode.commands.executeCommand<string>('keel._test.runsViewMessage');
}
