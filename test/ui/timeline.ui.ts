import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { formatTokens } from '../../src/shared/format';
import { buildTree, visibleRows } from '../../webview/timeline/model/tree';
import { openTimeline, serveTimeline, stubHost } from '../support/timelinePage';
import { syntheticTrace } from '../support/syntheticTrace';
import { EXAMPLE_INPUT, repoRootFrom } from '../vscode/testWorkspace';
import type { UiTest } from './uiTest';

const SPANS = 10_000;
const LONG = 60_000;
const ROW_HEIGHT = 22;

/** What a row says about itself, read in the page. */
interface RowAttributes {
  getAttribute(name: string): string | null;
}

/**
 * The built Trace timeline in Chromium with a 10,000-span trace, as a person uses it: only a
 * window of rows is in the DOM, scrolling draws other rows, the keyboard moves, collapses and
 * selects, the details pane shows the selected span, and a reload restores what was shown.
 */
export const timelineInBrowser: UiTest = {
  name: 'the Trace timeline draws 10,000 spans virtualized, scrolls, and shows the details of a span picked with the keyboard',
  failureScreenshot: 'ui-timeline-failure',
  async run({ page, resultsDir }) {
    const spans = syntheticTrace(SPANS);
    const expected = visibleRows(buildTree(spans), new Set()).map((row) => row.node.span);
    const tab = await page.context().newPage();
    try {
      await tab.setViewportSize({ width: 1400, height: 900 });
      await serveTimeline(tab, repoRootFrom(__dirname), { runId: 'run_synthetic', title: 'travel · synthetic', live: false, spans });
      await openTimeline(tab);
      const tree = tab.getByRole('tree');
      const rows = tree.getByRole('treeitem');
      const details = tab.locator('aside.details');

      // Only a window of rows is in the DOM; the spacer makes the scroll range of all of them.
      const [first] = (await stubHost(tab)).shown;
      assert.ok(first, 'the view did not report what it shows');
      assert.equal(first.shown.spanCount, SPANS);
      assert.equal(first.shown.rowCount, SPANS);
      const inDom = await rows.count();
      for (const count of [first.shown.rowsInDom, inDom]) assert.ok(count >= 20 && count <= 100, `${count} rows are in the DOM`);
      assert.equal(await tab.locator('.spacer').evaluate((element: { offsetHeight: number }) => element.offsetHeight), SPANS * ROW_HEIGHT);
      process.stdout.write(`    first render of ${SPANS} spans: ${(first.paintedAt - (await stubHost(tab)).sentAt).toFixed(0)} ms to the painted frame\n`);

      // Scrolling halfway draws the rows there, and still only a window of them.
      await tree.evaluate((element: { scrollTop: number }, top: number) => {
        element.scrollTop = top;
      }, 5000 * ROW_HEIGHT);
      await tree.locator('[data-index="5000"]').waitFor();
      const indices = await indicesInDom(rows);
      assert.ok(indices.length <= 100, `${indices.length} rows are in the DOM after scrolling`);
      assert.ok(indices[0] !== undefined && indices[0] > 4900 && indices[0] <= 5000, `the first row drawn is ${indices[0]}`);
      assert.equal(await rowText(tree, 5000, '.label'), expected[5000]?.name);

      // The keyboard: Home, Down, End, Page Up, Left and Right, Enter.
      await tree.focus();
      await tab.keyboard.press('Home');
      await expectFocused(tree, 0);
      assert.equal(await tree.evaluate((element: { scrollTop: number }) => element.scrollTop), 0);
      const outline = await tab.evaluate<string>("getComputedStyle(document.querySelector('[role=treeitem].focused')).outlineStyle");
      assert.notEqual(outline, 'none', 'the focused row shows no focus outline');
      await tab.keyboard.press('ArrowDown');
      await expectFocused(tree, 1);
      await tab.keyboard.press('End');
      await expectFocused(tree, SPANS - 1);
      await tab.keyboard.press('PageUp');
      const page1 = await focusedIndex(tree);
      assert.ok(page1 < SPANS - 10 && page1 > SPANS - 60, `Page Up moved to ${page1}`);

      await tab.keyboard.press('Home');
      await tab.keyboard.press('ArrowLeft');
      await tree.locator('[data-index="0"][aria-expanded="false"]').waitFor();
      assert.equal(await rows.count(), 1, 'collapsing the root leaves one row');
      await tab.keyboard.press('ArrowRight');
      await tree.locator('[data-index="0"][aria-expanded="true"]').waitFor();

      // A model call a few rows down: its details show its facts and its messages.
      const target = expected.findIndex((span, index) => index > 3 && span.kind === 'model');
      for (let step = 0; step < target; step++) await tab.keyboard.press('ArrowDown');
      await expectFocused(tree, target);
      await tab.keyboard.press('Enter');
      const selected = tree.locator(`[data-index="${target}"][aria-selected="true"]`);
      await selected.waitFor();
      const span = expected[target];
      assert.ok(span);
      assert.equal(await details.locator('h2').innerText().then((text) => text.split('\n')[0]), span.name);
      await details.locator('dd', { hasText: span.spanId }).waitFor();
      await details.locator('h3', { hasText: 'Input messages' }).waitFor();
      await details.locator('h3', { hasText: 'Output messages' }).waitFor();
      const tokens = `${formatTokens(Number(span.attributes['gen_ai.usage.input_tokens']))} in`;
      assert.ok((await details.locator('dl.facts').innerText()).includes(tokens), `the details do not give the tokens (${tokens})`);
      const reported = (await stubHost(tab)).posted.filter((message) => message.type === 'shown').at(-1);
      assert.equal(reported?.type === 'shown' ? reported.shown.selectedSpanId : null, span.spanId);
      await tab.screenshot({ path: join(resultsDir, 'ui-timeline.png') });

      // A flag in the list above the waterfall selects its span.
      const flagged = spans.find((candidate) => candidate.flags.length > 0 && candidate.flags[0]?.severity === 'error');
      assert.ok(flagged, 'the synthetic trace has an error flag');
      await tab.locator('nav.flag-list button').first().click();
      await details.locator('ul.flags li', { hasText: flagged.flags[0]?.message ?? '' }).waitFor();
      assert.equal(await tree.locator('[aria-selected="true"]').getAttribute('data-span-id'), flagged.spanId);

      // After a reload (the webview coming back), the same span is selected and the same rows show.
      await tab.waitForTimeout(500);
      const scrollTop = await tree.evaluate((element: { scrollTop: number }) => element.scrollTop);
      await openTimeline(tab);
      await tree.locator('[aria-selected="true"]').waitFor();
      assert.equal(await tree.locator('[aria-selected="true"]').getAttribute('data-span-id'), flagged.spanId);
      assert.equal(await tree.evaluate((element: { scrollTop: number }) => element.scrollTop), scrollTop);
      await details.locator('ul.flags li', { hasText: flagged.flags[0]?.message ?? '' }).waitFor();
    } finally {
      await tab.close();
    }
  },
};

/**
 * Runs a command from the palette. A window opened again shows the Keel view from its cache
 * before the extension's commands are registered, so the palette is opened again until it has it.
 */
export async function runFromPalette(page: Page, title: string): Promise<void> {
  const quickInput = page.locator('.quick-input-widget');
  const command = quickInput.locator('.monaco-list-row.focused').filter({ hasText: title });
  const deadline = Date.now() + LONG;
  for (;;) {
    await page.keyboard.press('F1');
    await quickInput.locator('.quick-input-box input').pressSequentially(title, { delay: 20 });
    try {
      await command.waitFor({ timeout: 5000 });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await page.keyboard.press('Escape');
    }
  }
  await page.keyboard.press('Enter');
}

async function indicesInDom(rows: Locator): Promise<number[]> {
  return rows.evaluateAll((elements: RowAttributes[]) => elements.map((element) => Number(element.getAttribute('data-index'))));
}

async function focusedIndex(tree: Locator): Promise<number> {
  return Number(await tree.locator('.focused').getAttribute('data-index'));
}

/** The row is focused: drawn with the focus, and named by the tree's aria-activedescendant. */
async function expectFocused(tree: Locator, index: number): Promise<void> {
  const row = tree.locator(`[data-index="${index}"].focused`);
  await row.waitFor();
  assert.equal(await tree.getAttribute('aria-activedescendant'), await row.getAttribute('id'));
}

async function rowText(tree: Locator, index: number, part: string): Promise<string> {
  return tree.locator(`[data-index="${index}"] ${part}`).innerText();
}

/**
 * In the real VS Code: a person runs the example from the palette, presses **Show Trace** on the
 * notification that the run completed, and reads the trace in the timeline's webview: one row per
 * span, and a span's details after choosing it with the keyboard.
 */
export const traceFromNotification: UiTest = {
  name: 'Show Trace on the notification of a finished run opens its Trace timeline, navigable with the keyboard',
  failureScreenshot: 'ui-trace-notification-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
    await page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ }).waitFor({ timeout: LONG });
    const quickInput = page.locator('.quick-input-widget');
    const quickInputBox = quickInput.locator('.quick-input-box input');
    const focusedRow = quickInput.locator('.monaco-list-row.focused');
    await runFromPalette(page, 'Keel: Run Agent');
    await focusedRow.filter({ hasText: 'travel.agent.ts' }).waitFor({ timeout: LONG });
    await page.keyboard.press('Enter');
    await quickInput.getByText('What should the agent do?').waitFor({ timeout: LONG });
    await quickInputBox.fill(EXAMPLE_INPUT);
    await page.keyboard.press('Enter');

    const toast = page.locator('.notification-toast').filter({ hasText: 'Keel · travel completed in' }).last();
    await toast.getByRole('button', { name: 'Show Run' }).waitFor({ timeout: LONG });
    await toast.getByRole('button', { name: 'Show Trace' }).click();

    const view = page.frameLocator('iframe.webview.ready').first().frameLocator('#active-frame');
    const tree = view.getByRole('tree');
    await tree.getByRole('treeitem').first().waitFor({ timeout: LONG });
    await view.locator('h1', { hasText: 'travel · ' }).waitFor({ timeout: LONG });
    // The run's span and one per step: invoke_agent, then chat and execute_tool spans.
    const names = await tree.locator('.label').allInnerTexts();
    assert.equal(names[0], 'invoke_agent travel');
    assert.ok(names.length >= 6, `the timeline shows ${names.length} spans: ${names.join(', ')}`);
    assert.ok(names.some((name) => name.startsWith('chat ')) && names.some((name) => name === 'execute_tool book_flight'), names.join(', '));

    // The keyboard: focus the tree, go down to the booking, and choose it.
    await tree.focus();
    const booking = names.indexOf('execute_tool book_flight');
    await page.keyboard.press('Home');
    for (let step = 0; step < booking; step++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await tree.locator(`[data-index="${booking}"][aria-selected="true"]`).waitFor({ timeout: LONG });
    const details = view.locator('aside.details');
    await details.locator('h2', { hasText: 'execute_tool book_flight' }).waitFor({ timeout: LONG });
    await details.locator('dd', { hasText: 'book_flight' }).first().waitFor({ timeout: LONG });
    // Its content comes whole from the extension, asked for and answered by message id.
    await details.locator('p.hint', { hasText: 'Loading its content' }).waitFor({ state: 'detached', timeout: LONG });
    await page.screenshot({ path: join(resultsDir, 'ui-trace-notification.png') });
  },
};
