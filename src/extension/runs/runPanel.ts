import * as vscode from 'vscode';
import type { RunEvent } from '../../protocol/events';
import type { RunViewProtocol } from '../../protocol/webview';
import { shortId } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { WebviewPanels, type PanelHandle, type PanelKind, type PanelView } from '../ui/webviewPanels';
import { agentFileToOpen } from './agentFileLink';

/** The Run view: one panel per run, showing its steps live. */
export type RunPanels = WebviewPanels<RunViewProtocol, RunView>;

export function runPanels(extensionUri: vscode.Uri, client: RuntimeClient): RunPanels {
  const kind: PanelKind<RunViewProtocol, RunView> = {
    viewType: 'keel.run',
    bundle: { name: 'run', stylesheet: 'runView', title: 'Keel run', loading: { className: 'loading', text: 'Loading run…' } },
    tabTitle: 'Run',
    single: false,
    open: (handle, runId) => new RunView(handle, runId, client),
  };
  return new WebviewPanels(extensionUri, kind);
}

/**
 * One panel's feed: once its webview is ready, the run and its steps; then every event, which the
 * view applies. Events that arrive while the snapshot is on its way are held and sent after it;
 * the view ignores those the snapshot already contains.
 */
class RunView implements PanelView<RunViewProtocol> {
  readonly answers = {};
  private held: RunEvent[] | undefined;
  /** The step to show once the run is there, when the view was asked for one before it loaded. */
  private focus: number | undefined;
  private loaded = false;
  private readonly subscription: vscode.Disposable;
  /** The run's agent file, as the store recorded it: the only file the view's link opens. */
  private agentFile: string | null = null;

  constructor(
    private readonly handle: PanelHandle<RunViewProtocol>,
    readonly runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.subscription = client.onRunEvent((event) => {
      if (this.held) this.held.push(event);
      else handle.post({ type: 'event', event });
    });
  }

  /** Opens the step `seq` in the view and scrolls to it. */
  focusStep(seq: number): void {
    if (this.loaded) this.handle.post({ type: 'focusStep', seq });
    else this.focus = seq;
  }

  ready(): void {
    this.held = [];
    this.loaded = false;
    this.client.request('getRun', { runId: this.runId }).then(
      ({ run, steps }) => {
        this.agentFile = run.agentFile;
        this.handle.setTitle(`${run.agent} · ${shortId(run.id)}`);
        this.handle.post({ type: 'run', run, steps });
        for (const event of this.held ?? []) this.handle.post({ type: 'event', event });
        this.held = undefined;
        this.loaded = true;
        if (this.focus !== undefined) this.handle.post({ type: 'focusStep', seq: this.focus });
        this.focus = undefined;
      },
      (error: unknown) => {
        this.held = undefined;
        this.handle.post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  receive(message: RunViewProtocol['fromView']): void {
    switch (message.type) {
      case 'openAgentFile': {
        const folders = (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
        const file = agentFileToOpen(message.file, this.agentFile, folders);
        if (file) void vscode.window.showTextDocument(vscode.Uri.file(file));
        else void vscode.window.showWarningMessage(`Keel opens only the run's own agent file in this workspace, not ${message.file}.`);
        break;
      }
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
