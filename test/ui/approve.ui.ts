import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import type { UiTest } from './uiTest';

const LONG = 60_000;
const EARLIEST = 'Book the earliest flight from NYC to LIS on 2026-12-10';

/**
 * A person runs the example agent for the earliest flight, which costs more than the agent may
 * spend alone: the run pauses, a notification asks, the Runs view shows the approval under the
 * run; after a window reload the notification is back, and **Approve** on it lets the run complete.
 */
export const approveFromNotification: UiTest = {
  name: 'a paused run asks with a notification (again after a reload); Approve on it resumes the run, and the Runs view shows it completed',
  failureScreenshot: 'ui-approval-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
    const keelTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ });
    await keelTab.waitFor({ timeout: LONG });
    // The Runs view lists the earlier runs once the extension is up; its commands are ready then.
    const sidebar = page.locator('.part.sidebar');
    if (!(await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).isVisible())) await keelTab.click();
    await sidebar.locator('.monaco-list-row[aria-label^="travel "]').first().waitFor({ timeout: LONG });

    const quickInput = page.locator('.quick-input-widget');
    const quickInputBox = quickInput.locator('.quick-input-box input');
    const focusedRow = quickInput.locator('.monaco-list-row.focused');
    await page.keyboard.press('F1');
    await quickInputBox.waitFor({ timeout: LONG });
    await quickInputBox.pressSequentially('Keel: Run Agent', { delay: 20 });
    await focusedRow.filter({ hasText: 'Keel: Run Agent' }).waitFor({ timeout: LONG });
    await page.keyboard.press('Enter');
    await focusedRow.filter({ hasText: 'travel.agent.ts' }).waitFor({ timeout: LONG });
    await page.keyboard.press('Enter');
    await quickInput.getByText('What should the agent do?').waitFor({ timeout: LONG });
    // The box offers the last input; type over it.
    await page.keyboard.press('ControlOrMeta+A');
    await quickInputBox.pressSequentially(EARLIEST, { delay: 5 });
    await page.keyboard.press('Enter');

    const toast = page.locator('.notification-toast').filter({ hasText: 'wants to book_flight' });
    await toast.waitFor({ timeout: LONG });
    const toastText = await toast.innerText();
    assert.ok(toastText.includes('Keel · travel wants to book_flight: $640 NYC→LIS (over $600)'), `unexpected notification: ${toastText}`);
    for (const button of ['Approve', 'Reject', 'Review…']) await toast.getByRole('button', { name: button }).waitFor({ timeout: LONG });

    // The Runs view shows the paused run, with the approval under it and its decisions on the row.
    const waiting = sidebar.locator('.monaco-list-row[aria-label^="travel \\""][aria-label*=" · waiting for a decision · "]').first();
    await waiting.waitFor({ timeout: LONG });
    await waiting.locator('.monaco-tl-twistie').click();
    const approvalRow = sidebar.locator('.monaco-list-row[aria-label^="book_flight: $640 NYC→LIS"]').first();
    await approvalRow.waitFor({ timeout: LONG });
    await approvalRow.hover();
    await approvalRow.locator('.action-label[aria-label="Approve"]').waitFor({ timeout: LONG });
    await approvalRow.locator('.action-label[aria-label="Reject…"]').waitFor({ timeout: LONG });
    await page.locator('.statusbar-item').filter({ hasText: /1 approval$/ }).first().waitFor({ timeout: LONG });
    // The progress of the run ended as it paused.
    await page.locator('.notification-toast').filter({ hasText: 'travel.agent.ts: step' }).waitFor({ state: 'detached', timeout: 10_000 });
    await page.screenshot({ path: join(resultsDir, 'ui-approval.png') });

    // After a window reload the approval, still pending, is announced again.
    await page.reload();
    await keelTab.waitFor({ timeout: LONG });
    await toast.waitFor({ timeout: LONG });
    assert.ok((await toast.innerText()).includes('Keel · travel wants to book_flight: $640 NYC→LIS (over $600)'));
    await toast.getByRole('button', { name: 'Approve' }).click();
    const done = page.locator('.notification-toast').filter({ hasText: 'Keel · travel completed in' }).filter({ hasText: 'KL642' });
    await done.waitFor({ timeout: LONG });
    const doneText = await done.innerText();
    assert.ok(/Booked KL642 for \$640\. Confirmation KEEL-KL642-/.test(doneText), `the notification does not give the result: ${doneText}`);
    await sidebar.locator('.monaco-list-row[aria-label^="travel \\""][aria-label*=" · waiting for a decision · "]').waitFor({ state: 'detached', timeout: LONG });
    await approvalRow.waitFor({ state: 'detached', timeout: LONG });
    const completed = sidebar.locator('.monaco-list-row[aria-label^="travel \\""][aria-label*=" · completed · 5 steps · "]');
    assert.ok((await completed.count()) >= 1, 'no completed travel run in the Runs view');
    await page.screenshot({ path: join(resultsDir, 'ui-approval-done.png') });
  },
};
