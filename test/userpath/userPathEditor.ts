import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { HELLO_AGENT, HELLO_GOLDEN, HELLO_INPUT } from '../../src/runtime/scaffold/projectFiles';
import { runAgentThroughPalette } from '../ui/runAgent.ui';
import { passInTestingView } from '../ui/testing.ui';
import { Cleanup, createProfile, installExtension, launchBrowser, packageExtension, startCodeServer } from '../vscode/codeServer';
import type { Step } from './userPath';

const LONG = 120_000;

/**
 * The editor half of the user's path: the VSIX `vsce package` makes, installed into a code-server
 * with a fresh user-data and extensions folder, opens the project the walk scaffolded, and Chromium
 * checks as a person would: the agent file type-checks with no problems, Keel: Run Agent… completes
 * it, and the Testing view lists and passes its golden case. Screenshots go to `resultsDir`.
 * Resolves with each check as a step, with its time.
 */
export async function walkInEditor(options: { readonly repoRoot: string; readonly project: string; readonly scratch: string; readonly resultsDir: string }): Promise<Step[]> {
  const { repoRoot, project, scratch, resultsDir } = options;
  const steps: Step[] = [];
  const step = async (command: string, action: () => Promise<void>) => {
    process.stdout.write(`\n$ ${command}\n`);
    const started = Date.now();
    await action();
    steps.push({ command, code: 0, output: '', ms: Date.now() - started });
  };
  const cleanup = new Cleanup();
  try {
    const vsix = join(scratch, 'keel-agents.vsix');
    await step('vsce package   (in the repository)', () => packageExtension(repoRoot, vsix).then(() => undefined));
    const profile = createProfile(cleanup);
    await step('code-server --install-extension keel-agents.vsix   (a fresh user-data and extensions folder)', () => installExtension(profile, vsix).then(() => undefined));
    const server = await startCodeServer(profile, { logFile: join(resultsDir, 'userpath-code-server.log') });
    cleanup.defer('stop code-server', () => server.stop());
    const { page } = await launchBrowser(cleanup);
    page.setDefaultTimeout(LONG);
    try {
      await step(`open ${HELLO_AGENT} in code-server: no problems`, async () => {
        await page.goto(`${server.url}/?folder=${encodeURIComponent(project)}`);
        await noProblemsIn(page, HELLO_AGENT);
        await page.screenshot({ path: join(resultsDir, 'userpath-agent-file.png') });
      });
      await step(`Keel: Run Agent… ${HELLO_AGENT} "${HELLO_INPUT}": completes`, async () => {
        const toast = await runAgentThroughPalette(page, 'hello.agent.ts', HELLO_INPUT);
        assert.match(toast, /Keel · hello completed in/, `the run did not complete: ${toast}`);
        assert.match(toast, /Hello, Ada!/, `the toast does not give the agent's answer: ${toast}`);
        await page.screenshot({ path: join(resultsDir, 'userpath-run-agent.png') });
      });
      await step(`Testing view: ${HELLO_GOLDEN} listed, Run Tests passes it`, async () => {
        await passInTestingView(page, 'hello.golden.yaml', caseNames(join(project, HELLO_GOLDEN)));
        await page.screenshot({ path: join(resultsDir, 'userpath-testing.png') });
      });
    } catch (error) {
      await page.screenshot({ path: join(resultsDir, 'userpath-editor-failure.png') }).catch(() => undefined);
      throw error;
    }
  } finally {
    await cleanup.run();
  }
  return steps;
}

/**
 * Opens the file with Quick Open, waits until TypeScript has read it (a hover over defineAgent
 * shows its signature, which it can only do when keel-agents resolves), then reads the
 * Problems view: it must have nothing, neither errors nor warnings.
 */
async function noProblemsIn(page: Page, file: string): Promise<void> {
  const name = file.split('/').at(-1) ?? file;
  await page.locator('.part.activitybar').waitFor({ timeout: LONG });
  await page.keyboard.press('ControlOrMeta+P');
  const quickInput = page.locator('.quick-input-widget');
  await quickInput.locator('.quick-input-box input').pressSequentially(name, { delay: 20 });
  await quickInput.locator('.monaco-list-row.focused').filter({ hasText: name }).waitFor({ timeout: LONG });
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active').filter({ hasText: name }).waitFor({ timeout: LONG });

  const token = page.locator('.monaco-editor .view-line span').filter({ hasText: /^defineAgent$/ }).first();
  // "(alias) defineAgent(config: AgentConfig): Agent"; an import TypeScript cannot resolve reads "any" instead.
  const hover = page.locator('.monaco-hover').filter({ hasText: /\(alias\) defineAgent\(\w+: \w+\): Agent/ });
  const deadline = Date.now() + LONG;
  for (;;) {
    await token.hover();
    try {
      await hover.waitFor({ timeout: 5_000 });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`TypeScript never showed defineAgent's type on hover in ${file}: ${String(error)}`);
      await page.mouse.move(0, 0);
    }
  }
  await page.mouse.move(0, 0);
  await page.keyboard.press('ControlOrMeta+Shift+M');
  const panel = page.locator('.part.panel');
  await panel.getByText('No problems have been detected in the workspace.').waitFor({ timeout: LONG });
}

/** The names of the golden file's cases, as the Testing view lists them. */
function caseNames(goldenFile: string): string[] {
  const names = [...readFileSync(goldenFile, 'utf8').matchAll(/^\s+- name: (.+)$/gm)].map((match) => (match[1] ?? '').trim());
  if (names.length === 0) throw new Error(`${goldenFile} has no cases.`);
  return names;
}
