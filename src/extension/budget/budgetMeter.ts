import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../ui/webviewHtml';
import type { HostToMeter, MeterShown, MeterState, MeterToHost } from '../../protocol/meter';
import { type RunEvent, runIdOfEvent } from '../../protocol/events';
import type { RuntimeClient } from '../client/runtimeClient';
import { CoalescedRefresh } from '../ui/coalescedRefresh';

const VIEW_TYPE = 'keel.meter';
/** Run events come in bursts; the spend is fetched again at most this often while a run goes. */
const REFRESH_DELAY_MS = 250;

/** The budget meter, as the internal test command reports it. */
export interface MeterSnapshot {
  readonly runId: string;
  readonly title: string;
  readonly active: boolean;
  /** Reports fetched and posted to the view so far. */
  readonly reports: number;
  /** What the webview last said it shows, or null before it drew the run. */
  readonly shown: MeterShown | null;
}

/**
 * The budget meter: one panel, showing the spend of one run at a time (the one last asked for),
 * live while it goes; it comes back after a window reload.
 */
export class BudgetMeter implements vscode.Disposable {
  private view: MeterPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: RuntimeClient,
  ) {
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
        deserializeWebviewPanel: (panel: vscode.WebviewPanel, state: unknown) => {
          const runId = (state as Partial<MeterState> | undefined)?.runId;
          if (typeof runId !== 'string' || this.view) panel.dispose();
          else this.attach(panel, runId);
          return Promise.resolve();
        },
      }),
    );
  }

  show(runId: string): void {
    if (this.view) {
      this.view.select(runId);
      this.view.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Budget ${runId.slice(-6)}`, vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.attach(panel, runId);
  }

  snapshot(): MeterSnapshot | null {
    return this.view?.snapshot() ?? null;
  }

  dispose(): void {
    this.view?.panel.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }

  private attach(panel: vscode.WebviewPanel, runId: string): void {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, { name: 'meter', stylesheet: 'meter', title: 'Keel budget', loading: { className: 'empty', text: 'Loading the budget…' } });
    const view = new MeterPanel(panel, runId, this.client);
    this.view = view;
    panel.onDidDispose(() => {
      if (this.view === view) this.view = undefined;
      view.dispose();
    });
  }


}

/**
 * The meter's feed: once the webview is ready, the run's spend report; then, after the events of
 * the run and its sub-agent runs that change it, the report again (at most every
 * REFRESH_DELAY_MS); budget warnings as they come.
 */
class MeterPanel implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[] = [];
  /** The run and its sub-agent runs, as the last report named them: their events matter. */
  private tree: Set<string>;
  private ready = false;
  private title: string;
  private reports = 0;
  private shown: MeterShown | null = null;
  private readonly refresher = new CoalescedRefresh(REFRESH_DELAY_MS, () => this.fetchAndPost());
  private disposed = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.tree = new Set([runId]);
    this.title = runId;
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((message: MeterToHost) => {
        switch (message.type) {
          case 'ready':
            // A fresh webview (opened, shown again, reloaded) has nothing: send it the report.
            this.ready = true;
            this.refresh();
            break;
          case 'shown':
            if (message.shown.runId === this.runId) this.shown = message.shown;
            break;
          case 'selectRun':
            this.select(message.runId);
            break;
        }
      }),
      client.onRunEvent((event) => this.onEvent(event)),
    );
  }

  /** Shows another run. */
  select(runId: string): void {
    if (runId === this.runId) {
      this.refresh();
      return;
    }
    this.runId = runId;
    this.tree = new Set([runId]);
    this.title = runId;
    this.shown = null;
    this.refresh();
  }

  snapshot(): MeterSnapshot {
    return { runId: this.runId, title: this.title, active: this.panel.active, reports: this.reports, shown: this.shown };
  }

  dispose(): void {
    this.disposed = true;
    this.refresher.dispose();
    for (const subscription of this.subscriptions) subscription.dispose();
  }

  private onEvent(event: RunEvent): void {
    if (!this.ready) return;
    const runId = runIdOfEvent(event);
    const ours = this.tree.has(runId) || (event.type === 'run_started' && event.run.parentRunId !== null && this.tree.has(event.run.parentRunId));
    if (!ours) return;
    switch (event.type) {
      case 'budget_warning':
        this.post({ type: 'warning', event });
        this.refresher.soon();
        break;
      case 'run_started':
        this.tree.add(event.run.id);
        this.refresher.soon();
        break;
      case 'step_started':
        // A model call reserves its worst case as it starts.
        if (event.step.kind === 'model') this.refresher.soon();
        break;
      case 'step_finished':
      case 'run_finished':
        this.refresher.soon();
        break;
      case 'model_delta':
      case 'tool_log':
      case 'step_retry':
      case 'approval_requested':
        break;
    }
  }

  private refresh(): void {
    if (this.ready) this.refresher.now();
  }

  private async fetchAndPost(): Promise<void> {
    const runId = this.runId;
    try {
      const report = await this.client.request('getSpend', { runId });
      if (runId !== this.runId) return;
      this.tree = new Set([runId, ...report.subRuns.map((run) => run.id)]);
      this.title = `${report.run.agent} · ${runId.slice(-6)}`;
      this.panel.title = `Budget · ${this.title}`;
      this.reports += 1;
      this.post({ type: 'spend', report });
    } catch (error) {
      this.post({ type: 'error', message: `Could not read the spend of ${runId}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  private post(message: HostToMeter): void {
    // A fetch may finish after its panel was closed.
    if (!this.disposed) void this.panel.webview.postMessage(message);
  }
}

