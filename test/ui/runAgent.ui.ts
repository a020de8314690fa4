import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { EXAMPLE_INPUT, EXAMPLE_RESULT } from '../vscode/testWorkspace';
import { approveFromNotification } from './approve.ui';
import { createAgentInEmptyFolder } from './createAgent.ui';
import { meterDuringRun } from './meter.ui';
import { resumeOffer } from './resume.ui';
import { goldenInTestingView } from './testing.ui';
import { runFromPalette, timelineInBrowser, traceFromNotification } from './timeline.ui';
import { runTreeInEditor } from './runTree.ui';
import { compareRunsInEditor } from './compare.ui';
import type { UiTest } from './uiTest';

const LONG = 60_000;

/** A person runs the example agent from the command palette and finds the run in the Keel view. */
const runAgentFromPalette: UiTest = {
  name: 'Keel: Run Agent from the command palette shows a toast and the run in the Runs view',
  failureScreenshot: 'ui-run-agent-failure',
  async run({ page, serverUrl, workspace, resultsDir }) {
    await page.goto(`${serverUrl}/?folder=${encodeURIComponent(workspace.path)}`);
    const keelTab = page.locator('.part.activitybar').getByRole('tab', { name: /^Keel/ });
    await keelTab.waitFor({ timeout: LONG });

    const toastText = await runAgentThroughPalette(page, 'travel.agent.ts', EXAMPLE_INPUT);
    assert.ok(toastText.includes('Keel · travel completed in'), `unexpected toast: ${toastText}`);
    assert.ok(toastText.includes(EXAMPLE_RESULT), `the toast does not give the result: ${toastText}`);

    await keelTab.click();
    const sidebar = page.locator('.part.sidebar');
    await sidebar.locator('.pane-header').filter({ hasText: 'Runs' }).waitFor({ timeout: LONG });
    // A run's row reads "<agent> <description>", e.g. `travel "Fly NYC to LIS…" · completed · 5 steps · 12 ms · just now`.
    const runRow = sidebar.locator('.monaco-list-row[aria-label^="travel "]').first();
    await runRow.waitFor({ timeout: LONG });
    const rowLabel = (await runRow.getAttribute('aria-label')) ?? '';
    assert.match(rowLabel, /^travel ".+" · completed · 5 steps · .+ · (just now|\d+ s ago)(, has actions)?$/, `the Runs row does not say the run completed: ${rowLabel}`);
    await page.screenshot({ path: join(resultsDir, 'ui-run-agent.png') });
  },
};

/**
 * Keel: Run Agent… from the palette, the agent file picked by name and the input typed; waits for
 * the toast that says the run completed (with its Show Run button) and returns its text.
 */
export async function runAgentThroughPalette(page: Page, agentFile: string, input: string): Promise<string> {
  const quickInput = page.locator('.quick-input-widget');
  const quickInputBox = quickInput.locator('.quick-input-box input');
  const focusedRow = quickInput.locator('.monaco-list-row.focused');

  await runFromPalette(page, 'Keel: Run Agent');
  await focusedRow.filter({ hasText: agentFile }).waitFor({ timeout: LONG });
  await page.keyboard.press('Enter');

  await quickInput.getByText('What should the agent do?').waitFor({ timeout: LONG });
  await quickInputBox.pressSequentially(input, { delay: 5 });
  await page.keyboard.press('Enter');

  const toast = page.locator('.notification-toast').filter({ hasText: 'completed' });
  await toast.waitFor({ timeout: LONG });
  await toast.getByRole('button', { name: 'Show Run' }).waitFor({ timeout: LONG });
  return toast.innerText();
}

/**
 * The run above happened in the runtime process of the installed extension, which loaded
 * better-sqlite3 and esbuild from the extension's own folder (not from the repository).
 */
const installedRuntime: UiTest = {
  name: 'the runtime process runs from the installed extension, with its better-sqlite3 and esbuild',
  failureScreenshot: 'ui-installed-runtime-failure',
  async run({ installedExtension }) {
    const installed = realpathSync(installedExtension);
    const daemonScript = join(installed, 'dist', 'daemon.js');
    const processes = listProcesses();
    const daemon = processes.find((candidate) => candidate.args.some((arg) => arg === daemonScript));
    assert.ok(daemon, `no process runs ${daemonScript}`);

    const addon = join(installed, 'node_modules', 'better-sqlite3', 'prebuilds', 'linux-x64.node');
    const maps = readFileSync(`/proc/${daemon.pid}/maps`, 'utf8');
    assert.ok(maps.includes(addon), `the runtime process did not load ${addon}`);
    assert.ok(!/better[-_]sqlite3[^\n]*\.node/.test(maps.replaceAll(addon, '')), 'the runtime process loaded another better-sqlite3');

    const esbuild = join(installed, 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild');
    const service = processes.find((candidate) => candidate.parent === daemon.pid && candidate.args[0] === esbuild);
    assert.ok(service, `the runtime process has no esbuild child running ${esbuild}`);
  },
};

/** In this order: the last one reloads the window. */
export const uiTests: readonly UiTest[] = [
  runAgentFromPalette,
  installedRuntime,
  timelineInBrowser,
  traceFromNotification,
  runTreeInEditor,
  compareRunsInEditor,
  approveFromNotification,
  meterDuringRun,
  goldenInTestingView,
  createAgentInEmptyFolder,
  resumeOffer,
];

interface ProcessInfo {
  readonly pid: number;
  readonly parent: number;
  readonly args: readonly string[];
}

function listProcesses(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
      // The parent is the second field after the command name, which is in parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      found.push({ pid: Number(name), parent, args });
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}
