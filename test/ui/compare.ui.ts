import * as assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFromPalette } from './timeline.ui';
import { webviewShowing, type UiTest } from './uiTest';

const LONG = 60_000;
const INPUT = 'Fare to Lisbon';

/**
 * An agent whose fare tool answers more each time it is called (it counts its calls in a file), so
 * two runs of it take the same steps and differ first in that tool's result.
 */
function writeComparerAgent(workspace: string): { readonly remove: () => void } {
  const file = join(workspace, 'comparer.agent.ts');
  const counter = join(workspace, 'comparer.count');
  writeFileSync(
    file,
    `import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const fare = defineTool({
  name: 'fare',
  description: 'Looks a fare up.',
  args: z.object({ to: z.string() }),
  effect: 'none',
  run: async ({ to }) => {
    const calls = existsSync(${JSON.stringify(counter)}) ? Number(readFileSync(${JSON.stringify(counter)}, 'utf8')) : 0;
    writeFileSync(${JSON.stringify(counter)}, String(calls + 1));
    return { to, usd: 598 + calls * 42 };
  },
});

export default defineAgent({
  name: 'comparer',
  instructions: 'Look the fare up, then answer.',
  model: scriptedModel(({ turn }) => (turn === 0 ? { toolCalls: [{ name: 'fare', args: { to: 'LIS' } }] } : 'Here is the fare.')),
  tools: [fare],
});
`,
  );
  return { remove: () => [file, counter].forEach((path) => rmSync(path, { force: true })) };
}

/**
 * A person runs an agent twice, selects both runs in the Runs view and picks Compare Runs from
 * their menu: the comparison shows the two runs side by side, step by step, and marks the first
 * difference (the tool's result at step 2).
 */
export const compareRunsInEditor: UiTest = {
  name: 'two runs selected in the Runs view compare side by side, step by step, with the first difference marked',
  failureScreenshot: 'ui-compare-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    const agent = writeComparerAgent(workspace.path);
    try {
      await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
      const keelTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ });
      await keelTab.waitFor({ timeout: LONG });
      const quickInput = page.locator('.quick-input-widget');
      await runFromPalette(page, 'View: Close All Editors');
      const sidebar = page.locator('.part.sidebar');
      if (!(await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).isVisible())) await keelTab.click();
      const rows = sidebar.locator(`.monaco-list-row[aria-label^="comparer \\"${INPUT}\\" · completed · "]`);
      for (let run = 0; run < 2; run++) {
        await runFromPalette(page, 'Keel: Run Agent');
        await quickInput.locator('.monaco-list-row.focused').filter({ hasText: 'comparer.agent.ts' }).waitFor({ timeout: LONG });
        await page.keyboard.press('Enter');
        await quickInput.getByText('What should the agent do?').waitFor({ timeout: LONG });
        await quickInput.locator('.quick-input-box input').pressSequentially(INPUT, { delay: 5 });
        await page.keyboard.press('Enter');
        await rows.nth(run).waitFor({ timeout: LONG });
      }
      await rows.nth(0).click();
      await rows.nth(1).click({ modifiers: ['Control'] });
      await rows.nth(1).click({ button: 'right' });
      const compare = page.locator('.context-view .action-label', { hasText: 'Compare Runs' });
      await compare.click({ timeout: LONG });
      // A click that lands while the menu is still being laid out only focuses its item (seen once): Enter runs it.
      await page.waitForTimeout(500);
      if (await compare.isVisible()) await page.keyboard.press('Enter');

      const view = await webviewShowing(page, '.first-difference', LONG);
      const banner = view.locator('.first-difference');
      assert.match(await banner.innerText(), /First difference: The tool returned something different at step 2 \/ 2\./);
      const first = view.locator('.row.first');
      assert.equal(await first.locator('.step .kind').first().innerText(), 'fare');
      const difference = view.locator('.details.first .difference');
      assert.equal(await difference.locator('h3').innerText(), 'result');
      const sides = (await difference.locator('pre').allInnerTexts()).sort();
      assert.deepEqual(sides, ['{"to":"LIS","usd":598}', '{"to":"LIS","usd":640}'], 'each run’s result of the first call, one per side');
      assert.equal(await view.locator('.row.differs').count(), 1, 'the model calls before and after are the same');
      await page.screenshot({ path: join(resultsDir, 'ui-compare.png') });
    } finally {
      agent.remove();
    }
  },
};
