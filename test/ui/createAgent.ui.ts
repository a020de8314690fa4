import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELLO_AGENT } from '../../src/runtime/scaffold/projectFiles';
import { runFromPalette } from './timeline.ui';
import type { UiTest } from './uiTest';

const LONG = 60_000;

/**
 * A person opens an empty folder, runs Keel: Create Agent… from the palette, accepts the folder
 * the dialog offers (the workspace folder) and finds the new agent file open, with the project
 * keel init writes (the golden case's cassette recorded) on disk. A second time, it is refused with
 * the files that exist, and nothing is written again.
 */
export const createAgentInEmptyFolder: UiTest = {
  name: 'Keel: Create Agent… in an empty folder writes the project keel init writes and opens the agent file',
  failureScreenshot: 'ui-create-agent-failure',
  async run({ page, serverUrl, resultsDir }) {
    const folder = realpathSync(mkdtempSync(join(tmpdir(), 'keel-create-agent-')));
    try {
      await page.goto(`${serverUrl}/?folder=${encodeURIComponent(folder)}`);
      await page.locator('.part.activitybar').waitFor({ timeout: LONG });
      await runFromPalette(page, 'Keel: Create Agent');

      // The folder dialog opens at the workspace folder (its path box fills in a moment later); its button accepts it.
      const quickInput = page.locator('.quick-input-widget');
      const pathBox = quickInput.locator('.quick-input-box input');
      await quickInput.getByText('Keel: Create Agent… (the folder of the new project)').waitFor({ timeout: LONG });
      const deadline = Date.now() + LONG;
      while ((await pathBox.inputValue()).replace(/\/$/, '') !== folder) {
        assert.ok(Date.now() < deadline, `the dialog does not offer the workspace folder ${folder}: it shows ${await pathBox.inputValue()}`);
        await page.waitForTimeout(250);
      }
      await quickInput.getByText('Create Agent Here').click();

      const agentTab = page.locator('.tabs-container .tab.active').filter({ hasText: 'hello.agent.ts' });
      await agentTab.waitFor({ timeout: LONG });
      await page.locator('.notification-toast').filter({ hasText: 'Created a Keel agent in' }).waitFor({ timeout: LONG });
      for (const file of [HELLO_AGENT, 'agents/hello.golden.yaml', 'agents/__cassettes__/hello.golden.cassette.json', 'keel.config.ts', 'tsconfig.json', 'package.json']) {
        assert.ok(existsSync(join(folder, file)), `${file} was not written; the folder has ${readdirSync(folder).join(', ')}`);
      }
      await page.screenshot({ path: join(resultsDir, 'ui-create-agent.png') });

      // Again in the same folder: refused, naming the files that exist, and nothing is rewritten.
      const written = statSync(join(folder, HELLO_AGENT)).mtimeMs;
      await runFromPalette(page, 'Keel: Create Agent');
      await quickInput.getByText('Keel: Create Agent… (the folder of the new project)').waitFor({ timeout: LONG });
      await quickInput.getByText('Create Agent Here').click();
      const refusal = page.locator('.notification-toast').filter({ hasText: 'keel init never overwrites a file' });
      await refusal.waitFor({ timeout: LONG });
      assert.match(await refusal.innerText(), /already has .*agents\/hello\.agent\.ts/, 'the refusal does not name the existing agent file');
      assert.equal(statSync(join(folder, HELLO_AGENT)).mtimeMs, written, 'the agent file was written again');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  },
};
