import * as vscode from 'vscode';
import type { ServerConsentParams } from '../../protocol/daemon';
import { isPostgresUrl } from '../../shared/storeLocation';
import type { RuntimeClientOptions } from './runtimeClient';

/** Where the servers a person allowed are kept: VS Code's own storage, by workspace folder (a workspace cannot write it). */
const ALLOWED_SERVERS = 'keel.allowedServers';

/** The editor's `keel.*` settings, read again at each use, and the workspace they apply to. */
export interface EditorSettings {
  readonly workspaceRoot: string | undefined;
  readonly extensionPath: string;
  readonly settings: () => vscode.WorkspaceConfiguration;
  /** `keel.nodePath`: the Node the runtime process and the debug adapter run on. */
  readonly nodePath: () => string;
  /**
   * The `keel.*` settings the person set, by full name, as the runtime takes them (they override
   * keel.config.ts; unset ones are left to it). In Restricted Mode only the user's own count.
   */
  readonly runtimeSettings: () => Record<string, unknown>;
  /** The servers the person allowed for this workspace, and which settings the workspace itself set. */
  readonly serverConsent: () => ServerConsentParams;
  /** Remembers that the person allowed Keel to connect to `server` from this workspace. */
  allowServer(server: string): Promise<void>;
}

export function editorSettings(context: vscode.ExtensionContext): EditorSettings {
  const settings = () => vscode.workspace.getConfiguration('keel');
  const workspaceRoot = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const names = Object.keys((context.extension.packageJSON as { contributes: { configuration: { properties: Record<string, unknown> } } }).contributes.configuration.properties)
    .filter((name) => name !== 'keel.nodePath')
    .map((name) => name.slice('keel.'.length));
  const allowed = () => context.globalState.get<Record<string, string[]>>(ALLOWED_SERVERS, {});
  const workspaceSet = (name: string): boolean => {
    const inspected = settings().inspect(name);
    return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
  };
  return {
    workspaceRoot,
    extensionPath: context.extensionPath,
    settings,
    nodePath: () => settings().get<string>('nodePath')?.trim() || 'node',
    runtimeSettings: () => {
      const set: Record<string, unknown> = {};
      for (const name of names) {
        const inspected = settings().inspect(name);
        const value = vscode.workspace.isTrusted ? (inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue) : inspected?.globalValue;
        if (value !== undefined) set[`keel.${name}`] = value;
      }
      return set;
    },
    serverConsent: () => ({
      workspaceSettings: names.filter(workspaceSet).map((name) => `keel.${name}`),
      allowed: workspaceRoot === undefined ? [] : (allowed()[workspaceRoot] ?? []),
    }),
    allowServer: async (server) => {
      if (workspaceRoot === undefined) return;
      const all = allowed();
      await context.globalState.update(ALLOWED_SERVERS, { ...all, [workspaceRoot]: [...new Set([...(all[workspaceRoot] ?? []), server])] });
    },
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
    settings: editor.runtimeSettings,
    trusted: () => vscode.workspace.isTrusted,
    serverConsent: editor.serverConsent,
    askConsent: async ({ message, server }) => {
      const allow = `Allow ${server}`;
      const choice = await vscode.window.showWarningMessage(message, { modal: true, detail: 'Allow it only if you know this server and trust this workspace with your credentials.' }, allow);
      if (choice !== allow) return false;
      await editor.allowServer(server);
      return true;
    },
  };
}
