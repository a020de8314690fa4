import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { spenderAgent } from '../vscode/spenderAgent';
import { runFromPalette } from './timeline.ui';
import type { UiTest } from './uiTest';

const LONG = 60_000;

/**
 * A person runs an agent that asks a sub-agent, and reads the run tree: in the Trace timeline the
 * sub-agent's spans sit under the tool call that started it, and a tool span's details show its
 * arguments and result (content is recorded by default for the editor's runs); in the Runs view,
 * the run's row gives its input and age, the sub-agent run is under it, and a click on a step
 * opens the Run view at that step.
 */
export const runTreeInEditor: UiTest = {
  name: 'a run with a sub-agent is one tree: nested in the Trace timeline with content shown, nested in the Runs view, and a step row opens the Run view at its step',
  failureScreenshot: 'ui-run-tree-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    const spender = spenderAgent(workspace.path);
    try {
      await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
      const keelTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ });
      await keelTab.waitFor({ timeout: LONG });
      const quickInput = page.locator('.quick-input-widget');
      const quickInputBox = quickInput.locator('.quick-input-box input');
      const focusedRow = quickInput.locator('.monaco-list-row.focused');
      const palette = (command: string) => runFromPalette(page, command);
      await palette('View: Close All Editors');
      await palette('Keel: Run Agent');
      await focusedRow.filter({ hasText: 'spender.agent.ts' }).waitFor({ timeout: LONG });
      await page.keyboard.press('Enter');
      await quickInput.getByText('What should the agent do?').waitFor({ timeout: LONG });
      await quickInputBox.pressSequentially('Compare fares to Lisbon for the tree', { delay: 5 });
      await page.keyboard.press('Enter');

      const toast = page.locator('.notification-toast').filter({ hasText: 'Keel · spender completed in' }).last();
      await toast.getByRole('button', { name: 'Show Trace' }).click({ timeout: LONG });
      const view = page.frameLocator('iframe.webview.ready').first().frameLocator('#active-frame');
      const tree = view.getByRole('tree');
      const row = (name: string) => tree.getByRole('treeitem').filter({ has: view.locator('.label', { hasText: new RegExp(`^${name}$`) }) }).first();
      await row('invoke_agent researcher').waitFor({ timeout: LONG });
      const level = async (name: string) => Number(await row(name).getAttribute('aria-level'));
      assert.equal(await level('invoke_agent spender'), 1);
      assert.equal(await level('execute_tool researcher'), 2);
      assert.equal(await level('invoke_agent researcher'), 3, 'the sub-agent run sits under the tool call that started it');
      assert.equal(await level('chat gpt-4.1-nano'), 4);

      // Content by default: the tool call's arguments, and no note about content missing.
      await row('execute_tool researcher').click();
      const details = view.locator('aside.details');
      await details.locator('h2', { hasText: 'execute_tool researcher' }).waitFor({ timeout: LONG });
      await details.locator('section h3', { hasText: 'Arguments' }).waitFor({ timeout: LONG });
      assert.match(await details.locator('section', { has: view.locator('h3', { hasText: 'Arguments' }) }).locator('pre').innerText(), /fares NYC to LIS in December/);
      assert.equal(await details.locator('.note').count(), 0);
      await details.locator('section h3 button.copy').first().waitFor({ timeout: LONG });
      await page.screenshot({ path: join(resultsDir, 'ui-trace-subagent.png') });

      // The Runs view: the row gives the input and age; the sub-agent run is under it.
      await palette('View: Close All Editors');
      const sidebar = page.locator('.part.sidebar');
      if (!(await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).isVisible())) await keelTab.click();
      const runRow = sidebar.locator('.monaco-list-row[aria-label^="spender \\"Compare fares to Lisbon for the tree\\" · completed · "]').first();
      await runRow.waitFor({ timeout: LONG });
      assert.match((await runRow.getAttribute('aria-label')) ?? '', / · (just now|\d+ s ago)(, has actions)?$/);
      if ((await runRow.getAttribute('aria-expanded')) !== 'true') await runRow.locator('.monaco-tl-twistie').click();
      const child = sidebar.locator('.monaco-list-row[aria-label^="researcher "]').first();
      await child.waitFor({ timeout: LONG });
      assert.equal(await child.getAttribute('aria-level'), '2', 'the sub-agent run is under its parent');
      await page.screenshot({ path: join(resultsDir, 'ui-runs-tree.png') });

      // A step row opens the Run view at that step.
      const step = sidebar.locator('.monaco-list-row[aria-label^="4 · researcher "]').first();
      await step.click();
      const runView = page.frameLocator('iframe.webview.ready').first().frameLocator('#active-frame');
      const focused = runView.locator('li.focused[data-seq="4"] details[open]');
      await focused.waitFor({ timeout: LONG });
      assert.match(await focused.locator('summary').innerText(), /researcher/);
      await page.screenshot({ path: join(resultsDir, 'ui-run-step.png') });
    } finally {
      spender.remove();
    }
  },
};
