import * as vscode from 'vscode';
import type { RuntimeClient } from './runtimeClient';
import type { EditorSettings } from './settings';

/**
 * Keeps the runtime process in step with the editor: changed settings reach it (runs started from
 * then on use them), a new Node or a folder that became trusted starts a new one (which may then
 * be the workspace's own keel-agents, and load its keel.config.ts).
 */
export function registerClient(context: vscode.ExtensionContext, deps: { client: RuntimeClient; log: vscode.LogOutputChannel; editor: EditorSettings }): void {
  const { client, log, editor } = deps;
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (!change.affectsConfiguration('keel') || !client.connected) return;
      if (change.affectsConfiguration('keel.nodePath')) {
        client.restart();
        return;
      }
      client.request('configure', { settings: editor.runtimeSettings() }).then(
        () => log.info('Keel settings changed: runs started from now on use them.'),
        (error: unknown) => {
          const message = `Keel could not apply the changed settings: ${error instanceof Error ? error.message : String(error)}`;
          log.error(message);
          void vscode.window.showErrorMessage(message);
        },
      );
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      log.info('The folder is trusted now: Keel starts its runtime again, with the workspace\'s own configuration.');
      client.restart();
    }),
  );
}
