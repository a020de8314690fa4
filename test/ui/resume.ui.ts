import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { gatedAgent, killCliMidTool } from '../vscode/interruptedRun';
import type { UiTest } from './uiTest';

const LONG = 60_000;

/**
 * A run is killed mid-tool; when the window comes back, Keel offers to resume it once, and
 * **Resume All** completes it in the same run.
 */
export const resumeOffer: UiTest = {
  name: 'after a window reload, Keel offers to resume an interrupted run, and Resume All completes it',
  failureScreenshot: 'ui-resume-offer-failure',
  async run({ page, serverUrl, workspace, installedExtension, resultsDir }) {
    const agent = gatedAgent(workspace.path, 'resumable', 'idempotent');
    try {
      agent.close();
      const runId = await killCliMidTool(join(installedExtension, 'bin', 'keel.js'), workspace.path, agent);
      agent.open();

      await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
      const offer = page.locator('.notification-toast').filter({ hasText: 'Keel found 1 interrupted run.' });
      await offer.waitFor({ timeout: LONG });
      await offer.getByRole('button', { name: 'Show' }).waitFor({ timeout: LONG });

      // The Runs view shows the run as interrupted, with a Resume Run button on its row.
      const sidebar = page.locator('.part.sidebar');
      if (!(await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).isVisible())) {
        await page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ }).click();
      }
      const row = sidebar.locator('.monaco-list-row[aria-label^="resumable "]').first();
      await row.waitFor({ timeout: LONG });
      assert.match((await row.getAttribute('aria-label')) ?? '', /^resumable ".+" · interrupted · \d+ steps? · /);
      await row.hover();
      await row.locator('.action-label[aria-label="Resume Run"]').waitFor({ timeout: LONG });
      await page.screenshot({ path: join(resultsDir, 'ui-resume-offer.png') });

      await offer.getByRole('button', { name: 'Resume All' }).click();
      const done = page.locator('.notification-toast').filter({ hasText: 'Keel · resumable completed in' });
      await done.waitFor({ timeout: LONG });
      assert.ok((await done.innerText()).includes('Finished.'), `the toast does not give the result: ${await done.innerText()}`);
      assert.deepEqual(agent.calls(), [`${runId}:1:0`, `${runId}:1:0`], 'the tool ran again, with the same idempotency key');
      assert.equal(await page.locator('.notification-toast').filter({ hasText: 'interrupted run' }).count(), 0, 'the offer is gone');
      await sidebar.locator('.monaco-list-row[aria-label^="resumable \\""][aria-label*=" · completed · 3 steps · "]').waitFor({ timeout: LONG });
    } finally {
      agent.open();
      agent.remove();
    }
  },
};
