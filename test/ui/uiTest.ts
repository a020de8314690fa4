import type { Page } from 'playwright-core';
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
