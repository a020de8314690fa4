import { basename, relative } from 'node:path';
import * as vscode from 'vscode';
import type { CreatedProject } from '../../protocol/daemon';
import type { RuntimeClient } from '../client/runtimeClient';

export interface CreateAgentDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
}

/**
 * Keel: Create Agent…: asks for a folder (the workspace folder by default, unless one is given),
 * writes the project `keel init` writes there (by the runtime process, with the same code), and
 * opens the new agent file. When a file it would write exists, it writes nothing and says which.
 * Returns the project, or undefined when the person backed out or it was refused.
 */
export async function createAgent(deps: CreateAgentDeps, given?: vscode.Uri): Promise<CreatedProject | undefined> {
  const folder = given ?? (await pickFolder());
  if (!folder) return undefined;
  let project: CreatedProject;
  try {
    project = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Keel: creating an agent in ${folder.fsPath}` }, () =>
      deps.client.request('createProject', { folder: folder.fsPath }),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    deps.log.error(`Keel: Create Agent… in ${folder.fsPath}: ${message}`);
    void vscode.window.showErrorMessage(message);
    return undefined;
  }
  deps.log.info(`Created a Keel project in ${project.folder}: ${project.written.join(', ')}`);
  await vscode.window.showTextDocument(vscode.Uri.file(project.agentFile));
  void announce(project);
  return project;
}

/** The folder dialog, opened at the (first) workspace folder, which is the default answer. */
async function pickFolder(): Promise<vscode.Uri | undefined> {
  const workspaceFolder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const picked = await vscode.window.showOpenDialog({
    title: 'Keel: Create Agent… (the folder of the new project)',
    openLabel: 'Create Agent Here',
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    ...(workspaceFolder ? { defaultUri: workspaceFolder } : {}),
  });
  return picked?.[0];
}

/** What was written and what is left to do; a folder outside the workspace can be opened from here. */
async function announce(project: CreatedProject): Promise<void> {
  const root = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(project.folder));
  const where = root ? relative(root.uri.fsPath, project.folder) || basename(project.folder) : project.folder;
  const next = [...(project.wrotePackageJson ? ['run npm install there'] : []), ...project.todo].join('; ');
  const message = `Created a Keel agent in ${where}: ${project.written.length} files.${next === '' ? '' : ` Next: ${next}.`}`;
  const openFolder = 'Open Folder';
  const choice = await vscode.window.showInformationMessage(message, ...(root ? [] : [openFolder]));
  if (choice === openFolder) await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(project.folder));
}

/** Registers Keel: Create Agent… (also the walkthrough's first step). */
export function registerCreateAgent(context: vscode.ExtensionContext, deps: CreateAgentDeps): void {
  context.subscriptions.push(vscode.commands.registerCommand('keel.createAgent', (folder?: vscode.Uri) => createAgent(deps, folder)));
}
