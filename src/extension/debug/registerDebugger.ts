import * as vscode from 'vscode';
import { TRANSCRIPT_SCHEME, runIdOfTranscript, transcriptUri, type StoppedAt } from '../../protocol/debug';
import { RUN_STATE_LABELS } from '../../shared/runText';
import type { Run } from '../../protocol/records';
import { followRun, type FollowRunDeps } from '../runs/followRun';
import { pickRecentRun } from '../runs/pickRun';
import { costSettings } from '../budget/registerBudget';
import type { RuntimeClient } from '../client/runtimeClient';
import { locateRuntime } from '../client/runtimeLocator';
import type { RunRow } from '../runs/runsTree';

export interface DebuggerDeps extends FollowRunDeps {
  readonly runIdOf: (target: string | RunRow) => string;
  readonly nodePath: () => string;
  readonly workspaceRoot: string | undefined;
  readonly extensionPath: string;
}

const DEBUG_TYPE = 'keel';
/** The query of a transcript read from the run database rather than from a debug session. */
const FROM_STORE = 'store';

/**
 * The replay debugger in the editor: the `keel` debug type (its adapter runs on a real Node, as
 * the runtime process does, since it reads the run database and loads agents), launch
 * configurations, transcript documents, Replay on every run of the Runs view, and Fork Run from
 * Here with a diff of the fork against the original.
 */
export function registerDebugger(context: vscode.ExtensionContext, deps: DebuggerDeps): void {
  const transcripts = new TranscriptDocuments(deps.client);
  const drafts = new ForkDrafts();
  const recent = new RecentLaunches(deps.client);
  context.subscriptions.push(
    transcripts,
    drafts,
    vscode.workspace.registerTextDocumentContentProvider(TRANSCRIPT_SCHEME, transcripts),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, {
      createDebugAdapterDescriptor: () => {
        const { script, source } = locateRuntime(deps.workspaceRoot, deps.extensionPath, 'debugAdapter.js');
        deps.log.info(`Starting the Keel debug adapter (${source}): ${deps.nodePath()} ${script}`);
        // --no-node-snapshot: isolated-vm (sandboxed tools of live runs) asks for it on Node 20 and later.
        return new vscode.DebugAdapterExecutable(deps.nodePath(), ['--no-node-snapshot', script], { cwd: deps.workspaceRoot ?? deps.extensionPath });
      },
    }),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new LaunchConfigurations(deps)),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, recent, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.commands.registerCommand('keel.replayRun', (target?: string | RunRow) => replayRun(deps, target)),
    vscode.commands.registerCommand('keel.pickRunId', async () => (await pickRecentRun(deps.client, 'Keel: Replay a Run'))?.id),
    vscode.commands.registerCommand('keel.forkRun', () => openForkDraft(drafts)),
    vscode.commands.registerCommand('keel.startFork', (uri?: vscode.Uri) => startFork(deps, drafts, uri)),
    vscode.commands.registerCommand('keel._test.launchConfigurations', () => recent.provideDebugConfigurations()),
  );
}

/** Keel: Replay Run: a debug session over a recorded run (the target, or one picked). */
async function replayRun(deps: DebuggerDeps, target?: string | RunRow): Promise<boolean> {
  const runId = target === undefined ? (await pickRecentRun(deps.client, 'Keel: Replay Run'))?.id : deps.runIdOf(target);
  if (!runId) return false;
  return vscode.debug.startDebugging(vscode.workspace.workspaceFolders?.[0], {
    type: DEBUG_TYPE,
    request: 'launch',
    name: `Replay ${runId}`,
    runId,
  });
}

/**
 * Keel: Fork Run from Here: opens the stopped step's result (or the model's answer) and the
 * fork's budget as a JSON document to edit, with Start Fork above it. Returns the document's URI,
 * or undefined when the session is not stopped at a step that can be forked.
 */
async function openForkDraft(drafts: ForkDrafts): Promise<vscode.Uri | undefined> {
  const session = vscode.debug.activeDebugSession;
  if (session?.type !== DEBUG_TYPE) {
    void vscode.window.showErrorMessage('Keel: Fork Run from Here needs a Keel debug session stopped at a step.');
    return undefined;
  }
  let at: StoppedAt;
  try {
    at = (await session.customRequest('keel/position')) as StoppedAt;
  } catch (error) {
    void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    return undefined;
  }
  if (at.runId !== at.rootRunId) {
    void vscode.window.showWarningMessage(`Step ${at.seq} belongs to a sub-agent run, which goes on only inside its parent: fork the parent's step that started it.`);
    return undefined;
  }
  if (!at.forkDocument) {
    void vscode.window.showWarningMessage(`Step ${at.seq} has not run yet: step over it, then fork.`);
    return undefined;
  }
  const document = await drafts.open(at, at.forkDocument);
  const what = at.kind === 'tool' ? `what ${at.name} returned` : 'what the model said';
  void vscode.window.showInformationMessage(`Keel · edit ${what} at step ${at.seq} (and the budget), then press Start Fork above it.`);
  return document.uri;
}

/**
 * Keel: Start Fork: forks the run at the draft's step with the draft as it reads now (saved or
 * not), follows the fork in the runtime process, closes the draft, then shows the fork's
 * transcript beside the original's. Returns both runs, or undefined when nothing was forked.
 */
async function startFork(deps: DebuggerDeps, drafts: ForkDrafts, uri = vscode.window.activeTextEditor?.document.uri): Promise<{ readonly original: string; readonly fork: Run } | undefined> {
  const draft = uri && drafts.get(uri);
  if (!uri || !draft) {
    void vscode.window.showErrorMessage('Keel: Start Fork works on a fork document: open one with Keel: Fork Run from Here while a Keel debug session is stopped.');
    return undefined;
  }
  const document = vscode.workspace.textDocuments.find((candidate) => candidate.uri.toString() === uri.toString());
  if (!document) return undefined;
  const text = document.getText();
  const original = draft.runId;
  const fork = await followRun(deps, `Keel · fork of ${original} at step ${draft.seq}`, () =>
    deps.client.request('forkRun', { runId: original, seq: draft.seq, document: text }),
  );
  if (!fork) return undefined;
  await drafts.close(document);
  const left = vscode.Uri.parse(transcriptUri(original)).with({ query: FROM_STORE });
  const right = vscode.Uri.parse(transcriptUri(fork.id)).with({ query: FROM_STORE });
  await vscode.commands.executeCommand('vscode.diff', left, right, `${fork.agent}: ${original} ↔ fork ${fork.id}`);
  return { original, fork };
}

/** The step a fork document forks, by the document's URI. */
interface Draft {
  readonly runId: string;
  readonly seq: number;
}

/** Fork documents being edited (untitled JSON with comments), each with Start Fork and Discard above it. */
class ForkDrafts implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly drafts = new Map<string, Draft>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      vscode.languages.registerCodeLensProvider({ scheme: 'untitled', language: 'jsonc' }, this),
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (this.drafts.delete(document.uri.toString())) void this.updateContext();
      }),
    );
  }

  async open(at: StoppedAt, text: string): Promise<vscode.TextDocument> {
    const document = await vscode.workspace.openTextDocument({ language: 'jsonc', content: text });
    this.drafts.set(document.uri.toString(), { runId: at.runId, seq: at.seq });
    await this.updateContext();
    await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
    return document;
  }

  get(uri: vscode.Uri): Draft | undefined {
    return this.drafts.get(uri.toString());
  }

  /** Closes a draft without asking to save it: the fork holds what it said. */
  async close(document: vscode.TextDocument): Promise<void> {
    await vscode.window.showTextDocument(document, { preview: false });
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const draft = this.get(document.uri);
    if (!draft) return [];
    const top = new vscode.Range(0, 0, 0, 0);
    return [
      new vscode.CodeLens(top, { title: `$(repo-forked) Start Fork of ${draft.runId} at step ${draft.seq}`, command: 'keel.startFork', arguments: [document.uri] }),
      new vscode.CodeLens(top, { title: 'Discard', command: 'workbench.action.revertAndCloseActiveEditor' }),
    ];
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }

  /** Offers Keel: Start Fork in the palette while a draft is open. */
  private async updateContext(): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'keel.forkDraftOpen', this.drafts.size > 0);
  }
}

/**
 * `keel` launch configurations (package.json holds the initial ones and the snippets): with
 * nothing configured, F5 debugs the agent file in the editor live, or replays a run picked from
 * the recent ones; a live one without `input` asks for it. The run database and the cost settings
 * come from the extension's settings.
 */
class LaunchConfigurations implements vscode.DebugConfigurationProvider {
  constructor(private readonly deps: DebuggerDeps) {}

  async resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, given: vscode.DebugConfiguration): Promise<vscode.DebugConfiguration | undefined> {
    let config = given;
    if (!config.type && !config.request && !config.name) {
      const file = vscode.window.activeTextEditor?.document.fileName;
      config = file?.endsWith('.agent.ts')
        ? { type: DEBUG_TYPE, request: 'launch', name: 'Keel: Debug Agent', agent: file }
        : { type: DEBUG_TYPE, request: 'launch', name: 'Keel: Replay a Run' };
    }
    if (!config['runId'] && !config['agent']) {
      const run = await pickRecentRun(this.deps.client, 'Keel: Replay a Run');
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
    const databasePath = typeof config['databasePath'] === 'string' ? config['databasePath'] : this.deps.client.databasePath();
    if (!databasePath) {
      void vscode.window.showErrorMessage('Keel needs a workspace folder (or keel.databasePath) to find the runs to replay.');
      return undefined;
    }
    return { ...config, databasePath, cost: config['cost'] ?? costSettings(this.deps.workspaceRoot) };
  }
}

const RECENT_RUNS = 10;
const AGENT_FILES = 50;

/**
 * The launch configurations Run and Debug offers under Keel without a launch.json: each agent
 * file of the workspace, live, and a replay of each recent run.
 */
class RecentLaunches implements vscode.DebugConfigurationProvider {
  constructor(private readonly client: RuntimeClient) {}

  async provideDebugConfigurations(): Promise<vscode.DebugConfiguration[]> {
    const [files, runs] = await Promise.all([
      vscode.workspace.findFiles('**/*.agent.ts', '**/node_modules/**', AGENT_FILES),
      this.client.hasDatabase() ? this.client.request('listRuns', { limit: RECENT_RUNS }) : [],
    ]);
    return [
      ...files.map((file) => ({ type: DEBUG_TYPE, request: 'launch', name: `Debug ${vscode.workspace.asRelativePath(file)} live`, agent: file.fsPath })),
      ...runs.map((run) => ({ type: DEBUG_TYPE, request: 'launch', name: `Replay ${run.agent} ${run.id} (${RUN_STATE_LABELS[run.state]})`, runId: run.id })),
    ];
  }
}

/**
 * `keel-transcript:` documents: a run as text, one block per step. A debug session that knows the
 * run answers (so a live step about to run is in it, and each frame's line is its step's); else
 * the run database does, as it does for `?store` ones (the diff of a fork).
 */
class TranscriptDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly sessions = new Set<vscode.DebugSession>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly client: RuntimeClient) {
    this.disposables.push(
      vscode.debug.onDidStartDebugSession((session) => {
        if (session.type === DEBUG_TYPE) this.sessions.add(session);
      }),
      vscode.debug.onDidTerminateDebugSession((session) => this.sessions.delete(session)),
      vscode.debug.onDidReceiveDebugSessionCustomEvent((event) => {
        const runId = (event.body as { runId?: unknown } | undefined)?.runId;
        if (event.event === 'keel/runChanged' && typeof runId === 'string') this.changed.fire(vscode.Uri.parse(transcriptUri(runId)));
      }),
    );
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const runId = runIdOfTranscript(`${TRANSCRIPT_SCHEME}:${uri.path}`);
    if (!runId) return `${uri.toString()} names no Keel run.`;
    if (uri.query !== FROM_STORE) {
      for (const session of this.sessions) {
        try {
          return ((await session.customRequest('keel/transcript', { runId })) as { text: string }).text;
        } catch {
          // This session does not know the run; another one, or the database, may.
        }
      }
    }
    return (await this.client.request('getTranscript', { runId })).text;
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}
