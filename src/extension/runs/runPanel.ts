import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../ui/webviewHtml';
import type { HostToRunView, RunViewState, RunViewToHost } from '../../protocol/webview';
import type { RunEvent } from '../../protocol/events';
import type { RuntimeClient } from '../client/runtimeClient';

const VIEW_TYPE = 'keel.run';

/** One webview panel per run, showing its steps live; panels come back after a window reload. */
export class RunPanels implements vscode.Disposable {
  private readonly panels = new Map<string, vscode.WebviewPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: RuntimeClient,
  ) {
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
        deserializeWebviewPanel: (panel: vscode.WebviewPanel, state: unknown) => {
          const runId = (state as Partial<RunViewState> | undefined)?.runId;
          if (typeof runId !== 'string') {
            panel.dispose();
            return Promise.resolve();
          }
          this.attach(panel, runId);
          return Promise.resolve();
        },
      }),
    );
  }

  show(runId: string): void {
    const existing = this.panels.get(runId);
    if (existing) {
      existing.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Run ${runId.slice(-6)}`, vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.attach(panel, runId);
  }

  dispose(): void {
    for (const panel of this.panels.values()) panel.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }

  private attach(panel: vscode.WebviewPanel, runId: string): void {
    this.panels.set(runId, panel);
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, { name: 'run', stylesheet: 'runView', title: 'Keel run', loading: { className: 'loading', text: 'Loading run…' } });
    const post = (message: HostToRunView) => void panel.webview.postMessage(message);
    // Events that arrive while the snapshot is on its way are held and sent after it; the view
    // ignores those the snapshot already contains.
    let held: RunEvent[] | undefined;
    const subscriptions: vscode.Disposable[] = [];
    subscriptions.push(
      panel.webview.onDidReceiveMessage((message: RunViewToHost) => {
        switch (message.type) {
          case 'ready':
            held = [];
            this.client.request('getRun', { runId }).then(
              ({ run, steps }) => {
                panel.title = `${run.agent} · ${run.id.slice(-6)}`;
                post({ type: 'run', run, steps });
                for (const event of held ?? []) post({ type: 'event', event });
                held = undefined;
              },
              (error: unknown) => post({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
            );
            break;
          case 'openAgentFile':
            void vscode.window.showTextDocument(vscode.Uri.file(message.file));
            break;
        }
      }),
      this.client.onRunEvent((event) => {
        if (held) held.push(event);
        else post({ type: 'event', event });
      }),
      panel.onDidDispose(() => {
        this.panels.delete(runId);
        for (const subscription of subscriptions) subscription.dispose();
      }),
    );
  }


}
