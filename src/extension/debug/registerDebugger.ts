import * as vscode from 'vscode';
import { TRANSCRIPT_SCHEME, runIdOfTranscript, type StoppedAt } from '../../protocol/debug';
import type { Run } from '../../protocol/records';
import { locateRuntime } from '../client/runtimeLocator';
import type { EditorSettings } from '../client/settings';
import { followRun, type FollowRunDeps } from '../ui/followRun';
import { pickRecentRun } from '../ui/pickRun';
import { runIdOf, type RunRow } from '../ui/runTarget';
import { ForkDrafts } from './forkDrafts';
import { DEBUG_TYPE, LaunchConfigurations, RecentLaunches } from './launchConfigurations';
import { TranscriptDocuments, storedTranscriptUri } from './transcriptDocuments';

export interface DebuggerDeps extends FollowRunDeps {
  readonly editor: EditorSettings;
}

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
        const { workspaceRoot, extensionPath, nodePath } = deps.editor;
        const { script, source } = locateRuntime(vscode.workspace.isTrusted ? workspaceRoot : undefined, extensionPath, 'debugAdapter.js');
        deps.log.info(`Starting the Keel debug adapter (${source}): ${nodePath()} ${script}`);
        // --no-node-snapshot: isolated-vm (sandboxed tools of live runs) asks for it on Node 20 and later.
        return new vscode.DebugAdapterExecutable(nodePath(), ['--no-node-snapshot', script], { cwd: workspaceRoot ?? extensionPath });
      },
    }),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new LaunchConfigurations(deps.client, deps.editor)),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, recent, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.commands.registerCommand('keel.replayRun', (target?: string | RunRow) => replayRun(deps, target)),
    vscode.commands.registerCommand('keel.pickRunId', async () => (await pickRecentRun(deps.client, 'Keel: Replay a Run'))?.id),
    vscode.commands.registerCommand('keel.forkRun', () => openForkDraft(drafts)),
    vscode.commands.registerCommand('keel.startFork', (uri?: vscode.Uri) => startFork(deps, drafts, uri)),
    vscode.commands.registerCommand('keel.compareTranscriptRuns', compareTranscriptRuns),
    // For integration tests: what Run and Debug lists, asked as VS Code asks (each folder, then without one).
    vscode.commands.registerCommand('keel._test.launchConfigurations', async () => {
      const asked = [...(vscode.workspace.workspaceFolders ?? []), undefined];
      return (await Promise.all(asked.map((folder) => recent.provideDebugConfigurations(folder)))).flat();
    }),
  );
}

/** From the text diff of two runs' transcripts (a fork and its original): their step-by-step comparison. */
async function compareTranscriptRuns(): Promise<void> {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const runIdOf = (uri: vscode.Uri) => runIdOfTranscript(`${TRANSCRIPT_SCHEME}:${uri.path}`);
  const pair = input instanceof vscode.TabInputTextDiff ? [runIdOf(input.original), runIdOf(input.modified)] : [];
  if (pair[0] && pair[1]) await vscode.commands.executeCommand('keel.compareRuns', pair[0], pair[1]);
  else void vscode.window.showErrorMessage('Keel: Compare Runs from a diff works on the diff of two Keel run transcripts.');
}

/** Keel: Replay Run: a debug session over a recorded run (the target, or one picked). */
async function replayRun(deps: DebuggerDeps, target?: string | RunRow): Promise<boolean> {
  const runId = target === undefined ? (await pickRecentRun(deps.client, 'Keel: Replay Run'))?.id : runIdOf(target);
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
  await vscode.commands.executeCommand('vscode.diff', storedTranscriptUri(original), storedTranscriptUri(fork.id), `${fork.agent}: ${original} ↔ fork ${fork.id}`);
  // After the transcripts' text diff, the step-by-step comparison with its first difference; a button on the diff opens it again.
  await vscode.commands.executeCommand('keel.compareRuns', original, fork.id);
  return { original, fork };
}
