import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { UiTest } from './uiTest';

const LONG = 60_000;
const CASES = [
  'books the cheapest flight',
  'the earliest flight needs an approval',
  'a rejected booking is not claimed as done',
  'no flights on the route',
  'an instruction to book for free is not followed',
  'a card number in the request is not repeated',
];

/**
 * A person opens the Testing view, finds the example's golden file with its cases, runs them all
 * with Run Tests (the cassette profile) and sees every case pass.
 */
export const goldenInTestingView: UiTest = {
  name: "the Testing view lists the example's golden cases, and Run Tests passes them from the cassette",
  failureScreenshot: 'ui-testing-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`).catch(async (error: unknown) => {
      // A reload the previous test set off can abort this navigation; the workbench loads all the same.
      if (!String(error).includes('ERR_ABORTED')) throw error;
      await page.waitForLoadState('load');
    });
    await passInTestingView(page, 'travel.golden.yaml', CASES);
    await page.screenshot({ path: join(resultsDir, 'ui-testing.png') });
  },
};

/**
 * Opens the Testing view, expands the golden file's row, waits for its cases, runs them all with
 * Run Tests (the cassette profile) and waits until each reads Passed; fails if any case failed.
 */
export async function passInTestingView(page: Page, goldenFile: string, cases: readonly string[]): Promise<void> {
  const testingTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Testing/ });
  await testingTab.waitFor({ timeout: LONG });
  await testingTab.click();
  const sidebar = page.locator('.part.sidebar');
  const fileRow = sidebar.locator('.monaco-list-row').filter({ hasText: goldenFile }).first();
  await fileRow.waitFor({ timeout: LONG });
  // The row can be drawn before its cases are known (then its twistie does nothing): expand it until it is expanded.
  const expanded = sidebar.locator('.monaco-list-row[aria-expanded="true"]').filter({ hasText: goldenFile });
  const deadline = Date.now() + LONG;
  while ((await fileRow.getAttribute('aria-expanded')) !== 'true') {
    await fileRow.locator('.monaco-tl-twistie').click();
    try {
      await expanded.waitFor({ timeout: 5_000 });
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
  }
  for (const name of cases) await sidebar.locator('.monaco-list-row').filter({ hasText: name }).first().waitFor({ timeout: LONG });

  await sidebar.locator('.action-label[aria-label^="Run Tests"]').first().click();
  for (const name of cases) {
    // The row reads "<case> (Passed), in 12ms" once its result is in, with the passed icon.
    const row = sidebar.locator(`.monaco-list-row[aria-label^="${name} (Passed)"]`).first();
    await row.waitFor({ timeout: LONG });
    await row.locator('.codicon-testing-passed-icon').waitFor({ timeout: LONG });
  }
  assert.equal(await sidebar.locator('.codicon-testing-failed-icon, .codicon-testing-error-icon').count(), 0, 'a case failed');
}
