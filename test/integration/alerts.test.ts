import * as assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { until } from '../support/until';
import { FLAGGED_AGENT } from '../support/flaggedAgent';

/** The parts of the records these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly state: string;
  readonly error: string | null;
}

interface Toast {
  readonly text: string;
  readonly buttons: readonly string[];
  readonly about: readonly string[];
  readonly state: string;
}

interface AlertsView {
  readonly toasts: readonly Toast[];
  readonly configReads: number;
}

interface RunsViewItem {
  readonly runId: string;
  readonly description: string;
}

interface TraceView {
  readonly runId: string;
}

const CONFIG = `import { defineConfig } from 'keel-agents';
export default defineConfig({
  alerts: { channels: { editor: { type: 'editor' } }, rules: [{ on: 'flag', to: 'editor' }] },
  review: { sample: [{ tool: 'pay', rate: 1 }] },
});
`;

interface ReviewView {
  readonly reviews: readonly { readonly id: string; readonly runId: string; readonly label: string; readonly description: string }[];
  readonly tools: readonly { readonly label: string; readonly description: string; readonly suggestion: string | null }[];
}

interface RecordedReview {
  readonly id: string;
  readonly verdict: string | null;
  readonly note: string | null;
  readonly reviewedBy: string | null;
  readonly reviewedAt: number | null;
}

function reviewView(): Thenable<ReviewView> {
  return vscode.commands.executeCommand<ReviewView>('keel._test.reviewView');
}

function alertsView(): Thenable<AlertsView> {
  return vscode.commands.executeCommand<AlertsView>('keel._test.alerts');
}

describe('Keel in VS Code: alerts', () => {
  let workspace: string;
  let agentFile: string;
  let configFile: string;

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    agentFile = join(workspace, 'payer.agent.ts');
    configFile = join(workspace, 'keel.config.ts');
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
    // The runtime process is up, so a change of keel.config.ts reaches it.
    await vscode.commands.executeCommand('keel.refreshRuns');
  });

  after(async () => {
    const { configReads } = await alertsView();
    rmSync(configFile, { force: true });
    rmSync(agentFile, { force: true });
    // The other tests run without these rules.
    await until(async () => ((await alertsView()).configReads > configReads ? true : undefined), 'keel.config.ts read again after it was removed', 15_000);
  });

  it('reads keel.config.ts again when it changes; a flagged run is an editor notification whose buttons open it, and is marked in the Runs view; its sampled call is announced and counted in the review stats', async () => {
    writeFileSync(agentFile, FLAGGED_AGENT);
    const { configReads } = await alertsView();
    writeFileSync(configFile, CONFIG);
    await until(async () => ((await alertsView()).configReads > configReads ? true : undefined), 'keel.config.ts read again after it was written', 15_000);

    const run = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(agentFile), 'pay');
    assert.ok(run, 'keel.runAgent returned no run');
    assert.equal(run.state, 'completed', run.error ?? '');

    const toast = await until(async () => (await alertsView()).toasts.find((candidate) => candidate.text.includes(run.id)), 'the alert notification', 15_000);
    assert.equal(toast.text, `Keel · Run ${run.id} (payer) completed with 1 flag: ignored_tool_error`);
    assert.deepEqual(toast.buttons, ['Show Run', 'Show Trace']);

    await vscode.commands.executeCommand('keel._test.pressAlertAction', { alertId: toast.about[0], label: 'Show Trace' });
    const traces = await vscode.commands.executeCommand<readonly TraceView[]>('keel._test.traceViews');
    assert.ok(
      traces.some((view) => view.runId === run.id),
      'Show Trace opened no trace of the run',
    );

    const rows = await until(async () => {
      const view = await vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
      return view.find((row) => row.runId === run.id && row.description.includes('⚑'));
    }, 'the Runs view marking the run as flagged', 15_000);
    assert.match(rows.description, /· ⚑ 1 flag$/);

    const sampled = await until(async () => (await alertsView()).toasts.find((candidate) => candidate.about.includes('reviews')), 'the notification of calls sampled for review', 15_000);
    assert.equal(sampled.text, 'Keel · a call of pay that ran without approval was sampled for review.');
    assert.deepEqual(sampled.buttons, ['Review']);
    await vscode.commands.executeCommand('keel.showReviewStats');
    const stats = vscode.workspace.textDocuments.find((document) => document.getText().startsWith('# Keel review sampling'));
    assert.ok(stats, 'Show Review Sampling Stats opened no document');
    assert.match(stats.getText(), /- \*\*pay\*\*: disagreed with 0 of 0 \(none reviewed, 95% CI 0%–100%\), 1 waiting for a verdict/);
  });
  it('the Review view lists a sampled call (tool, arguments, agent, run, age); Disagree with a note records the verdict with who and when, takes it off the list, and counts it in the rate per tool', async () => {
    writeFileSync(agentFile, FLAGGED_AGENT);
    const { configReads } = await alertsView();
    writeFileSync(configFile, CONFIG);
    await until(async () => ((await alertsView()).configReads > configReads ? true : undefined), 'keel.config.ts read again after it was written', 15_000);
    const before = (await reviewView()).tools.find((tool) => tool.label === 'pay');
    const reviewedBefore = Number(/disagreed with (\d+) of (\d+)/.exec(before?.description ?? '')?.[2] ?? 0);

    const run = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(agentFile), 'pay');
    assert.ok(run, 'keel.runAgent returned no run');
    const sampled = await until(async () => (await reviewView()).reviews.find((review) => review.runId === run.id), 'the sampled call in the Review view', 15_000);
    assert.equal(sampled.label, 'pay amount: 640');
    assert.match(sampled.description, /^payer · run \S+ step 2 · (just now|\d+ s ago)$/);

    assert.equal(await vscode.commands.executeCommand('keel.disagreeReview', sampled.id, '640 is too much to pay without a person'), true);
    const view = await reviewView();
    assert.ok(!view.reviews.some((review) => review.id === sampled.id), 'the call still waits for a verdict in the Review view');
    const pay = view.tools.find((tool) => tool.label === 'pay');
    assert.match(pay?.description ?? '', new RegExp(`^disagreed with \\d+ of ${reviewedBefore + 1} \\(\\d+%, 95% CI \\d+%–\\d+%\\)`));

    const recorded = (await vscode.commands.executeCommand<readonly RecordedReview[]>('keel._test.recordedReviews')).find((review) => review.id === sampled.id);
    assert.equal(recorded?.verdict, 'disagree');
    assert.equal(recorded.note, '640 is too much to pay without a person');
    assert.ok(recorded.reviewedBy && recorded.reviewedBy.length > 0, 'no reviewer recorded');
    assert.ok(recorded.reviewedAt !== null && Date.now() - recorded.reviewedAt < 60_000, 'no time recorded');
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('keel.agreeReview', sampled.id)).then((ok) => (ok ? undefined : Promise.reject(new Error('refused')))), /refused/, 'a second verdict on the same call is refused');
  });
});
