import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../ui/webviewHtml';
import type { HostToTimeline, TimelineShown, TimelineState, TimelineToHost } from '../../protocol/webview';
import { runIdOfEvent } from '../../protocol/events';
import type { RuntimeClient } from '../client/runtimeClient';
import { TraceFeed } from './traceFeed';
import { CoalescedRefresh } from '../ui/coalescedRefresh';

const VIEW_TYPE = 'keel.trace';
/** Run events come in bursts; the trace is fetched again at most this often while a run goes. */
const REFRESH_DELAY_MS = 250;

/** One Trace timeline, as the internal test command reports it. */
export interface TraceViewSnapshot {
  readonly runId: string;
  readonly title: string;
  readonly active: boolean;
  readonly live: boolean;
  /** Spans in the trace the host last fetched. */
  readonly spanCount: number;
  /** What the webview last said it shows, or null before it drew anything. */
  readonly shown: TimelineShown | null;
}

/** One Trace timeline panel per run, live while the run goes; panels come back after a window reload. */
export class TracePanels implements vscode.Disposable {
  private readonly views = new Map<string, TraceView>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly client: RuntimeClient,
  ) {
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
        deserializeWebviewPanel: (panel: vscode.WebviewPanel, state: unknown) => {
          const runId = (state as Partial<TimelineState> | undefined)?.runId;
          if (typeof runId !== 'string') panel.dispose();
          else this.attach(panel, runId);
          return Promise.resolve();
        },
      }),
    );
  }

  show(runId: string): void {
    const existing = this.views.get(runId);
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Trace ${runId.slice(-6)}`, vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.attach(panel, runId);
  }

  snapshot(): TraceViewSnapshot[] {
    return [...this.views.values()].map((view) => view.snapshot());
  }

  dispose(): void {
    for (const view of [...this.views.values()]) view.panel.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }

  private attach(panel: vscode.WebviewPanel, runId: string): void {
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, { name: 'timeline', stylesheet: 'timeline', title: 'Keel trace', loading: { className: 'loading', text: 'Loading trace…' } });
    const view = new TraceView(panel, runId, this.client);
    this.views.set(runId, view);
    panel.onDidDispose(() => {
      this.views.delete(runId);
      view.dispose();
    });
  }


}

/**
 * One panel's feed: once its webview is ready, the whole trace (as span outlines); then, while the
 * run goes, the spans that changed, fetched again after the run's events (at most every
 * REFRESH_DELAY_MS); and the whole span the view selects, when it asks.
 */
class TraceView implements vscode.Disposable {
  private readonly feed = new TraceFeed();
  private readonly subscriptions: vscode.Disposable[] = [];
  private ready = false;
  private title: string;
  private live = false;
  private spanCount = 0;
  private shown: TimelineShown | null = null;
  private readonly refresher = new CoalescedRefresh(REFRESH_DELAY_MS, () => this.fetchAndPost());
  private disposed = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.title = runId;
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((message: TimelineToHost) => {
        switch (message.type) {
          case 'ready':
            // A fresh webview (opened, shown again, reloaded) has nothing: send it the whole trace.
            this.ready = true;
            this.feed.reset();
            this.refresher.now();
            break;
          case 'getSpan':
            this.post({ type: 'span', requestId: message.requestId, span: message.runId === runId ? (this.feed.span(message.spanId) ?? null) : null });
            break;
          case 'shown':
            this.shown = message.shown;
            break;
        }
      }),
      client.onRunEvent((event) => {
        if (this.ready && runIdOfEvent(event) === runId && event.type !== 'model_delta') this.refresher.soon();
      }),
    );
  }

  snapshot(): TraceViewSnapshot {
    return { runId: this.runId, title: this.title, active: this.panel.active, live: this.live, spanCount: this.spanCount, shown: this.shown };
  }

  dispose(): void {
    this.disposed = true;
    this.refresher.dispose();
    for (const subscription of this.subscriptions) subscription.dispose();
  }

  private async fetchAndPost(): Promise<void> {
    try {
      // An event of the run during this fetch brings another fetch after it, so the last fetch
      // sees how the run ended even if the two answers here straddle a change.
      const [{ run }, { spans }] = await Promise.all([
        this.client.request('getRun', { runId: this.runId }),
        this.client.request('getTrace', { runId: this.runId }),
      ]);
      if (this.disposed) return;
      this.title = `${run.agent} · ${run.id.slice(-6)}`;
      this.panel.title = `Trace · ${this.title}`;
      const live = run.state === 'running';
      const update = this.feed.update(spans);
      if (update.kind === 'full') {
        this.post({ type: 'trace', runId: this.runId, title: this.title, live, spans: update.spans });
      } else if (update.spans.length > 0 || live !== this.live) {
        this.post({ type: 'patch', runId: this.runId, live, spans: update.spans });
      }
      this.live = live;
      this.spanCount = spans.length;
    } catch (error) {
      this.feed.reset();
      this.post({ type: 'error', message: `Could not read the trace of ${this.runId}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  private post(message: HostToTimeline): void {
    // A fetch may finish after its panel was closed.
    if (!this.disposed) void this.panel.webview.postMessage(message);
  }
}

