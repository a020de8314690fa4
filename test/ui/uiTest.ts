import type { FrameLocator, Page } from 'playwright-core';
import type { TestWorkspace } from '../vscode/testWorkspace';

/** What a UI test gets from its runner (test/vscode/runUi.ts). */
export interface UiContext {
  readonly page: Page;
  /** code-server's address, without the smoke-test driver (so notification toasts show). */
  readonly serverUrl: string;
  readonly workspace: TestWorkspace;
  /** Where the extension was installed from its .vsix. */
  readonly installedExtension: string;
  readonly resultsDir: string;
}

export interface UiTest {
  readonly name: string;
  /** File name (without .png) of the screenshot saved when the test fails. */
  readonly failureScreenshot: string;
  run(context: UiContext): Promise<void>;
}

/**
 * The page of the webview that shows `selector`, once one does. VS Code keeps the frames of
 * webviews it has hidden, so the first ready frame is not always the one in front.
 */
export async function webviewShowing(page: Page, selector: string, timeoutMs: number): Promise<FrameLocator> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const count = await page.locator('iframe.webview.ready').count();
    for (let index = 0; index < count; index++) {
      const view = page.frameLocator('iframe.webview.ready').nth(index).frameLocator('#active-frame');
      if (await view.locator(selector).first().isVisible().catch(() => false)) return view;
    }
    if (Date.now() > deadline) throw new Error(`no webview showed ${selector} within ${timeoutMs} ms`);
    await page.waitForTimeout(250);
  }
}
