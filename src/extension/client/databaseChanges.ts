import * as vscode from 'vscode';

const SETTLE_MS = 500;

/**
 * Fires, once things settle, when the workspace's SQLite run database changes: runs, approvals and
 * memory written by another process (the CLI, a second window). One file watcher serves every
 * view that refreshes on it.
 */
export function watchDatabase(context: vscode.ExtensionContext): vscode.Event<void> {
  const changed = new vscode.EventEmitter<void>();
  context.subscriptions.push(changed);
  const root = vscode.workspace.workspaceFolders?.[0];
  if (root) {
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(root, '.keel/keel.db*'));
    let timer: NodeJS.Timeout | undefined;
    const later = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => changed.fire(), SETTLE_MS);
    };
    context.subscriptions.push(watcher, watcher.onDidChange(later), watcher.onDidCreate(later), { dispose: () => timer && clearTimeout(timer) });
  }
  return changed.event;
}
