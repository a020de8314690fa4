import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { FrameLocator } from 'playwright-core';
import { spendReport } from '../../src/daemon/spend';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { buildMeterView, type GaugeKey } from '../../webview/meter/model/meterView';
import { SPENDER_BUDGET, spenderAgent } from '../vscode/spenderAgent';
import type { UiTest } from './uiTest';

const LONG = 60_000;
/** The gauges whose numbers stand still while the run waits (active time goes on counting). */
const STEADY: readonly GaugeKey[] = ['tokens', 'usd', 'steps'];

/**
 * A person runs an agent that spends money from the palette (the prompt tells what its earlier
 * run cost), clicks the spend in the status bar while it runs, and reads the budget meter: its
 * gauges give what the database holds, with the call in flight held; a screenshot is taken then.
 * When the run ends, the meter shows its final numbers and the status bar item goes away; after a
 * window reload, the meter is back.
 */
export const meterDuringRun: UiTest = {
  name: 'the budget meter, opened from the status bar during a run, shows the spend the database holds, live; the run prompt gives the forecast',
  failureScreenshot: 'ui-meter-failure',
  async run({ page, serverUrl, workspace, installedExtension, resultsDir }) {
    const spender = spenderAgent(workspace.path);
    let store: SqliteStore | undefined;
    try {
      // An earlier run of the agent, from a terminal: the forecast rests on it.
      await keelRun(join(installedExtension, 'bin', 'keel.js'), workspace.path, spender.file);
      spender.close();

      await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
      const keelTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ });
      await keelTab.waitFor({ timeout: LONG });
      const sidebar = page.locator('.part.sidebar');
      if (!(await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).isVisible())) await keelTab.click();
      await sidebar.locator('.monaco-list-row[aria-label^="spender "]').first().waitFor({ timeout: LONG });

      const quickInput = page.locator('.quick-input-widget');
      const quickInputBox = quickInput.locator('.quick-input-box input');
      const focusedRow = quickInput.locator('.monaco-list-row.focused');
      const palette = async (command: string) => {
        await page.keyboard.press('F1');
        await quickInputBox.waitFor({ timeout: LONG });
        await quickInputBox.pressSequentially(command, { delay: 20 });
        await focusedRow.filter({ hasText: command }).waitFor({ timeout: LONG });
        await page.keyboard.press('Enter');
      };
      // Earlier tests' editors (a Trace timeline, a Run view) would be webviews too.
      await palette('View: Close All Editors');

      await palette('Keel: Run Agent');
      await focusedRow.filter({ hasText: 'spender.agent.ts' }).waitFor({ timeout: LONG });
      await page.keyboard.press('Enter');
      const prompt = quickInput.getByText('What should the agent do?');
      await prompt.waitFor({ timeout: LONG });
      const promptText = await prompt.innerText();
      // Earlier UI tests may have run the spender agent too: the forecast counts their completed runs.
      assert.match(promptText, /^What should the agent do\? Earlier completed runs with openai:gpt-4o-mini: typically \$[\d.]+ and [\d.]+k? tokens, 95% under \$[\d.]+ and [\d.]+k? tokens \(\d+ runs?\)\./);
      await quickInputBox.pressSequentially('Find the cheapest fare to Lisbon', { delay: 5 });
      await page.keyboard.press('Enter');

      // The status bar shows the run's spend while it runs; clicking it opens the meter.
      const spend = page.locator('.statusbar-item').filter({ hasText: /\$[\d.]+ · [\d.]+k? tok$/ }).first();
      await spend.waitFor({ timeout: LONG });
      await spend.click();
      const meter = page.frameLocator('iframe.webview.ready').first().frameLocator('#active-frame');
      await meter.locator('h1', { hasText: 'Budget · spender · ' }).waitFor({ timeout: LONG });
      await meter.locator('.reservations tr.held').first().waitFor({ timeout: LONG });
      await meter.locator('.subruns li').first().waitFor({ timeout: LONG });

      store = openSqliteStore(join(workspace.path, '.keel', 'keel.db'));
      const [running] = (await store.listRuns({ limit: 20, states: ['running'] })).filter((run) => run.agent === 'spender' && run.parentRunId === null);
      assert.ok(running, 'no spender run is running');
      assert.equal(await meter.locator('h1').innerText(), `Budget · spender · ${running.id.slice(-6)}`);
      const during = buildMeterView(await spendReport(store, running.id, { now: Date.now() }), Date.now());
      assert.equal(during.held.length, 1, 'the database has no call in flight');
      await expectGauges(meter, during.gauges);
      assert.equal(await meter.locator('.reservations tr.held').count(), 1);
      assert.equal(await meter.locator('[data-gauge="usd"] .held').innerText(), `${during.gauges.find((item) => item.key === 'usd')?.held ?? '?'} held`);
      assert.equal(await meter.locator('[data-gauge="steps"] .limit').innerText(), String(SPENDER_BUDGET.steps));
      assert.deepEqual(await meter.locator('.models td.model').allInnerTexts(), during.models.map((row) => row.model));
      // Into test-results/ only: docs/images/budget-meter.png is a committed picture, not a test output.
      await page.screenshot({ path: join(resultsDir, 'ui-meter.png') });

      spender.open();
      await page.locator('.notification-toast').filter({ hasText: 'Keel · spender completed in' }).waitFor({ timeout: LONG });
      await meter.locator('header .badge.completed').waitFor({ timeout: LONG });
      await meter.locator('.reservations tr.held').waitFor({ state: 'detached', timeout: LONG });
      const after = buildMeterView(await spendReport(store, running.id, { now: Date.now() }), Date.now());
      await expectGauges(meter, after.gauges);
      assert.equal(await meter.locator('[data-gauge="time"] .value').innerText(), after.gauges.find((item) => item.key === 'time')?.value);
      assert.equal(await meter.locator('.reservations tbody tr.settled').count(), after.recent.length);
      await spend.waitFor({ state: 'detached', timeout: LONG });
      await page.screenshot({ path: join(resultsDir, 'ui-meter-done.png') });

      // After a window reload (as a person reloads VS Code, which saves the open editors first) the meter comes back on the same run.
      await palette('Developer: Reload Window');
      await meter.locator('h1', { hasText: `Budget · spender · ${running.id.slice(-6)}` }).waitFor({ timeout: LONG });
      await meter.locator('header .badge.completed').waitFor({ timeout: LONG });
      await expectGauges(meter, after.gauges);
    } finally {
      spender.open();
      spender.remove();
      await store?.close();
    }
  },
};

/** The gauges that stand still show in the webview what the database holds. */
async function expectGauges(meter: FrameLocator, gauges: ReturnType<typeof buildMeterView>['gauges']): Promise<void> {
  for (const key of STEADY) {
    const expected = gauges.find((item) => item.key === key);
    assert.ok(expected, `no ${key} gauge`);
    const gauge = meter.locator(`[data-gauge="${key}"]`).first();
    // The view may draw the same numbers a moment later than the database has them.
    const deadline = Date.now() + 10_000;
    let shown = await gauge.locator('.value').innerText();
    while (shown !== expected.value && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      shown = await gauge.locator('.value').innerText();
    }
    assert.equal(shown, expected.value, `the ${key} gauge`);
    assert.equal(await gauge.locator('.limit').innerText(), expected.limit ?? 'no limit', `the ${key} limit`);
  }
}

/** `node keel.js run <agent> --input …` in the workspace, as a person would from a terminal. */
function keelRun(keelJs: string, workspace: string, agentFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [keelJs, 'run', agentFile, '--input', 'Find fares', '--db', join(workspace, '.keel', 'keel.db')];
    const child = spawn('node', args, { cwd: workspace, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', (error) => reject(new Error(`could not start node for the CLI: ${error.message}`)));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`keel run exited with ${code}:\n${output}`))));
  });
}
