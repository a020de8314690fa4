import * as vscode from 'vscode';
import type { Run } from '../../protocol/records';
import { formatAgo, shortId, truncate } from '../../shared/format';
import { RUN_STATE_LABELS } from '../../shared/runText';
import type { RuntimeClient } from '../client/runtimeClient';
import type { EditorSettings } from '../client/settings';
import { pickRecentRun } from '../ui/pickRun';

/** The debug type of Keel's replay debugger. */
export const DEBUG_TYPE = 'keel';

/**
 * `keel` launch configurations (package.json holds the initial ones and the snippets): with
 * nothing configured, F5 debugs the agent file in the editor live, or replays a run picked from
 * the recent ones; a live one without `input` asks for it. The run database and the cost settings
 * come from the extension's settings.
 */
export class LaunchConfigurations implements vscode.DebugConfigurationProvider {
  constructor(
    private readonly client: RuntimeClient,
    private readonly editor: EditorSettings,
  ) {}

  async resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, given: vscode.DebugConfiguration): Promise<vscode.DebugConfiguration | undefined> {
    let config = given;
    if (!config.type && !config.request && !config.name) {
      const file = vscode.window.activeTextEditor?.document.fileName;
      config = file?.endsWith('.agent.ts')
        ? { type: DEBUG_TYPE, request: 'launch', name: 'Keel: Debug Agent', agent: file }
        : { type: DEBUG_TYPE, request: 'launch', name: 'Keel: Replay a Run' };
    }
    if (!config['runId'] && !config['agent']) {
      const run = await pickRecentRun(this.client, 'Keel: Replay a Run');
      if (!run) return undefined;
      config = { ...config, runId: run.id };
    }
    if (config['agent'] && typeof config['input'] !== 'string') {
      const input = await vscode.window.showInputBox({ title: 'Keel: Debug Agent', prompt: 'The input of the run' });
      if (input === undefined) return undefined;
      config = { ...config, input };
    }
    return config;
  }

  resolveDebugConfigurationWithSubstitutedVariables(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration | undefined {
    // Without a databasePath of its own, the session opens the database the workspace's configuration names (keel.config.ts included).
    if (typeof config['databasePath'] !== 'string' && !this.client.databasePath()) {
      void vscode.window.showErrorMessage('Keel needs a workspace folder (or keel.databasePath) to find the runs to replay.');
      return undefined;
    }
    return { ...config, settings: this.editor.runtimeSettings(), serverConsent: this.editor.serverConsent() };
  }
}

const RECENT_RUNS = 10;
const AGENT_FILES = 50;

/**
 * The launch configurations Run and Debug offers under Keel without a launch.json, for one
 * workspace folder: each of its agent files, live, and a replay of each recent run of its agents.
 * VS Code asks once per folder and once more without one (for the user's settings); that last
 * time gets nothing while folders are open, so each configuration is listed once.
 */
export class RecentLaunches implements vscode.DebugConfigurationProvider {
  constructor(private readonly client: RuntimeClient) {}

  async provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (!folder && folders.length > 0) return [];
    const [files, runs] = await Promise.all([
      vscode.workspace.findFiles(folder ? new vscode.RelativePattern(folder, '**/*.agent.ts') : '**/*.agent.ts', '**/node_modules/**', AGENT_FILES),
      this.client.hasDatabase() ? this.client.request('listRuns', { limit: RECENT_RUNS }) : [],
    ]);
    const now = Date.now();
    return [
      ...files.map((file) => ({ type: DEBUG_TYPE, request: 'launch', name: `Debug ${vscode.workspace.asRelativePath(file)} live`, agent: file.fsPath })),
      ...runs
        .filter((run) => folderOf(run, folders) === folder)
        .map((run) => ({ type: DEBUG_TYPE, request: 'launch', name: replayName(run, now), runId: run.id })),
    ];
  }
}

/** `Replay travel "Book the cheapest…" · completed · 5 min ago · d4b74`: which run, told apart by its input and age (and its id, when those are the same). */
function replayName(run: Run, now: number): string {
  return `Replay ${run.agent} ${JSON.stringify(truncate(run.input, 32))} · ${RUN_STATE_LABELS[run.state]} · ${formatAgo(now - run.createdAt)} · ${shortId(run.id)}`;
}

/** The folder a run belongs to: the one holding its agent file, else the first (the database is the workspace's). */
function folderOf(run: Run, folders: readonly vscode.WorkspaceFolder[]): vscode.WorkspaceFolder | undefined {
  const file = run.agentFile;
  const holding = file === null ? undefined : folders.find((candidate) => file.startsWith(`${candidate.uri.fsPath}/`) || file.startsWith(`${candidate.uri.fsPath}\\`));
  return holding ?? folders[0];
}
