import * as vscode from 'vscode';
import type { CostSettings } from '../../protocol/daemon';
import { isPostgresUrl } from '../../shared/storeLocation';
import { costSettingsFrom } from './costSettings';
import type { RuntimeClientOptions } from './runtimeClient';

/** The editor's `keel.*` settings, read again at each use, and the workspace they apply to. */
export interface EditorSettings {
  readonly workspaceRoot: string | undefined;
  readonly extensionPath: string;
  readonly settings: () => vscode.WorkspaceConfiguration;
  /** `keel.nodePath`: the Node the runtime process and the debug adapter run on. */
  readonly nodePath: () => string;
  /** Prices and the daily allowance, as the runtime process takes them. */
  readonly cost: () => CostSettings;
}

export function editorSettings(context: vscode.ExtensionContext): EditorSettings {
  const settings = () => vscode.workspace.getConfiguration('keel');
  const workspaceRoot = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return {
    workspaceRoot,
    extensionPath: context.extensionPath,
    settings,
    nodePath: () => settings().get<string>('nodePath')?.trim() || 'node',
    cost: () => costSettingsFrom(settings().get<unknown>('prices'), settings().get<unknown>('budget.dailyUsd'), workspaceRoot),
  };
}

/** How the runtime client starts runtime processes for this workspace, from the settings. */
export function clientOptions(editor: EditorSettings, log: vscode.LogOutputChannel): RuntimeClientOptions {
  const { workspaceRoot, settings } = editor;
  return {
    extensionPath: editor.extensionPath,
    workspaceRoot,
    log,
    nodePath: editor.nodePath,
    databasePath: () => {
      const configured = settings().get<string>('databasePath')?.trim();
      // A PostgreSQL connection string goes to the runtime process as it is.
      if (configured && isPostgresUrl(configured)) return configured;
      if (!configured || !workspaceRoot) return undefined;
      return vscode.Uri.joinPath(vscode.Uri.file(workspaceRoot), configured).fsPath;
    },
    cost: editor.cost,
    sandboxDefault: () => settings().get<string>('sandbox.default'),
  };
}
