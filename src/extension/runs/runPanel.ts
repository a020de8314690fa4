import * as vscode from 'vscode';
import type { RunEvent } from '../../protocol/events';
import type { RunViewProtocol } from '../../protocol/webview';
import { shortId } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { WebviewPanels, type PanelHandle, type PanelKind, type PanelView } from '../ui/webviewPanels';

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
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly handle: PanelHandle<RunViewProtocol>,
    private readonly runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.subscription = client.onRunEvent((event) => {
      if (this.held) this.held.push(event);
      else handle.post({ type: 'event', event });
    });
  }

  ready(): void {
    this.held = [];
    this.client.request('getRun', { runId: this.runId }).then(
      ({ run, steps }) => {
        this.handle.setTitle(`${run.agent} · ${shortId(run.id)}`);
        this.handle.post({ type: 'run', run, steps });
        for (const event of this.held ?? []) this.handle.post({ type: 'event', event });
        this.held = undefined;
      },
      (error: unknown) => {
        this.held = undefined;
        this.handle.post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  receive(message: RunViewProtocol['fromView']): void {
    switch (message.type) {
      case 'openAgentFile':
        void vscode.window.showTextDocument(vscode.Uri.file(message.file));
        break;
    }
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
