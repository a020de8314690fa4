import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { formatDuration, formatTokens, formatUsd } from '../../src/shared/format';
import { SPENDER_BUDGET, SPENDER_MODELS, spenderAgent, type SpenderAgent } from '../vscode/spenderAgent';
import { readTestContext } from '../vscode/testWorkspace';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly agent: string;
  readonly state: string;
  readonly error: string | null;
  readonly stepCount: number;
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number };
  readonly costUsd: number;
  readonly activeMs: number;
  readonly parentRunId: string | null;
}

/** What `keel._test.meterView` reports: the panel, and what its webview said it drew. */
interface MeterView {
  readonly runId: string;
  readonly title: string;
  readonly active: boolean;
  readonly reports: number;
  readonly shown: {
    readonly runId: string;
    readonly title: string;
    readonly state: string;
    readonly gauges: readonly { key: string; value: string; limit: string | null; held: string | null; level: string }[];
    readonly models: readonly { model: string; tokens: string; usd: string }[];
    readonly budgets: readonly string[];
    readonly held: number;
    readonly recent: number;
    readonly subRuns: readonly string[];
  } | null;
}

interface SpendStatus {
  readonly visible: boolean;
  readonly runId: string | null;
  readonly text: string;
  readonly tooltip: string;
}

describe('Keel in VS Code: the budget meter', () => {
  let workspace: string;
  let spender: SpenderAgent;

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
    spender = spenderAgent(workspace);
  });

  after(async () => {
    spender.open();
    spender.remove();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('is offered on every run in the Runs view, and as Keel: Show Budget Meter in the palette', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const command of ['keel.showBudget', 'keel.chooseBudget', 'keel._test.meterView', 'keel._test.spendStatus']) {
      assert.ok(commands.includes(command), `${command} is not registered`);
    }
    const manifest = vscode.extensions.getExtension('keel.keel-agents')?.packageJSON as {
      contributes: {
        commands: { command: string; title: string; category: string }[];
        menus: Record<string, { command: string; when?: string; group?: string }[]>;
        configuration: { properties: Record<string, unknown> };
      };
    };
    const chooser = manifest.contributes.commands.find((entry) => entry.command === 'keel.chooseBudget');
    assert.equal(`${chooser?.category}: ${chooser?.title}`, 'Keel: Show Budget Meter');
    const onRuns = manifest.contributes.menus['view/item/context']?.filter((entry) => entry.command === 'keel.showBudget') ?? [];
    assert.ok(onRuns.some((entry) => entry.group?.startsWith('inline') && entry.when?.includes('viewItem =~ /^run\\./')), 'Show Budget is not an inline action on runs');
    assert.ok('keel.prices' in manifest.contributes.configuration.properties && 'keel.budget.dailyUsd' in manifest.contributes.configuration.properties);
  });

  it('shows a run’s spend live, with its call in flight, in the meter and the status bar, and its final numbers when it ends', async () => {
    spender.close();
    const running = vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(spender.file), 'Find the cheapest fare');

    // While the run goes, the status bar shows its spend; the run is the one it names.
    const status = await waitFor(spendStatus, (candidate) => candidate.visible && candidate.runId !== null, 'the status bar to show the run’s spend');
    assert.match(status.text, /^\$\(pulse\) \$[\d.]+ · [\d.]+k? tok$/);
    assert.match(status.tooltip, /^Keel · spender · \w{6} · running\n/);
    const runId = status.runId ?? '';

    // Clicking it opens the meter on that run: its third model call holds a reservation.
    await vscode.commands.executeCommand('keel.showBudget', runId);
    const live = await waitFor(meterView, (view) => view?.shown?.runId === runId && view.shown.held === 1 && view.shown.subRuns.length === 1, 'the meter to show the call in flight');
    assert.ok(live?.shown);
    assert.equal(live.shown.state, 'running');
    assert.equal(live.title, `spender · ${runId.slice(-6)}`);
    assert.ok(live.active, 'the meter is not the active editor');
    const money = gaugeOf(live, 'usd');
    assert.equal(money.limit, formatUsd(SPENDER_BUDGET.usd));
    assert.ok(money.held, 'the money gauge does not show what the call in flight holds');
    assert.equal(gaugeOf(live, 'tokens').limit, formatTokens(SPENDER_BUDGET.tokens));
    assert.equal(gaugeOf(live, 'steps').limit, String(SPENDER_BUDGET.steps));
    assert.equal(gaugeOf(live, 'time').limit, formatDuration(SPENDER_BUDGET.wallTimeMs));
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.equal(tab?.label, `Budget · spender · ${runId.slice(-6)}`);
    assert.ok(tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('keel.meter'), 'the active tab is not the budget meter');

    spender.open();
    const run = await running;
    assert.equal(run?.id, runId);
    assert.equal(run.state, 'completed', run.error ?? '');

    // Its final numbers are those the CLI reads from the database: the run and its sub-agent run.
    const done = await waitFor(meterView, (view) => view?.shown?.runId === runId && view.shown.state === 'completed' && view.shown.held === 0, 'the meter to show the finished run');
    assert.ok(done?.shown);
    const runs = await keelRuns();
    const lead = runs.find((candidate) => candidate.id === runId);
    const child = runs.find((candidate) => candidate.parentRunId === runId);
    assert.ok(lead && child, 'keel runs does not list the run and its sub-agent run');
    const tokens = lead.usage.inputTokens + lead.usage.outputTokens + child.usage.inputTokens + child.usage.outputTokens;
    assert.deepEqual(
      done.shown.gauges.map((item) => [item.key, item.value, item.held]),
      [
        ['tokens', formatTokens(tokens), null],
        ['usd', formatUsd(lead.costUsd + child.costUsd), null],
        ['steps', String(lead.stepCount), null],
        ['time', formatDuration(lead.activeMs), null],
      ],
    );
    assert.deepEqual(done.shown.models.map((row) => row.model), [...SPENDER_MODELS]);
    assert.deepEqual(done.shown.subRuns, [`researcher · ${child.id.slice(-6)}`]);
    assert.equal(done.shown.recent, 6, 'five calls of the spender and one of the researcher were settled');

    // The run is over: the status bar item goes away.
    await waitFor(spendStatus, (candidate) => !candidate.visible, 'the status bar item to go away');
  });

  it('shows the sub-agent run picked in the meter, with the budget of its parent it draws on', async () => {
    const view = await meterView();
    assert.ok(view?.shown);
    const runs = await keelRuns();
    const child = runs.find((candidate) => candidate.parentRunId === view.runId);
    assert.ok(child);
    await vscode.commands.executeCommand('keel.showBudget', child.id);
    const shown = await waitFor(meterView, (candidate) => candidate?.shown?.runId === child.id, 'the meter to show the sub-agent run');
    assert.deepEqual(shown?.shown?.budgets, [`Parent run · ${view.runId.slice(-6)}`]);
    assert.deepEqual(shown?.shown?.models.map((row) => row.model), ['openai:gpt-4.1-nano']);
  });
});

function gaugeOf(view: MeterView, key: string): { value: string; limit: string | null; held: string | null; level: string } {
  const found = view.shown?.gauges.find((item) => item.key === key);
  assert.ok(found, `the meter has no ${key} gauge`);
  return found;
}

function meterView(): Thenable<MeterView | null> {
  return vscode.commands.executeCommand<MeterView | null>('keel._test.meterView');
}

function spendStatus(): Thenable<SpendStatus> {
  return vscode.commands.executeCommand<SpendStatus>('keel._test.spendStatus');
}

async function waitFor<T>(read: () => Thenable<T>, test: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  let value = await read();
  while (!test(value)) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

/** `keel runs --json` in the workspace, as a person would from a terminal. */
function keelRuns(): Promise<Run[]> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder);
  const cwd = folder.uri.fsPath;
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env['ELECTRON_RUN_AS_NODE'];
    const child = spawn('node', [join(readTestContext(cwd).repoRoot, 'bin', 'keel.js'), 'runs', '--json', '--limit', '50'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (error) => reject(new Error(`could not start node: ${error.message}`)));
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`keel runs exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as Run[]);
    });
  });
}
