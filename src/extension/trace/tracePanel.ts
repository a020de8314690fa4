import type * as vscode from 'vscode';
import { runIdOfEvent } from '../../protocol/events';
import type { TimelineProtocol, TimelineShown } from '../../protocol/webview';
import { shortId } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { CoalescedRefresh } from '../ui/coalescedRefresh';
import { WebviewPanels, type PanelHandle, type PanelKind, type PanelView } from '../ui/webviewPanels';
import { TraceFeed } from './traceFeed';

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

/** The Trace timeline: one panel per run, live while the run goes. */
export type TracePanels = WebviewPanels<TimelineProtocol, TraceView>;

export function tracePanels(extensionUri: vscode.Uri, client: RuntimeClient): TracePanels {
  const kind: PanelKind<TimelineProtocol, TraceView> = {
    viewType: 'keel.trace',
    bundle: { name: 'timeline', stylesheet: 'timeline', title: 'Keel trace', loading: { className: 'loading', text: 'Loading trace…' } },
    tabTitle: 'Trace',
    single: false,
    open: (handle, runId) => new TraceView(handle, runId, client),
  };
  return new WebviewPanels(extensionUri, kind);
}

/**
 * One panel's feed: once its webview is ready, the whole trace (as span outlines); then, while the
 * run goes, the spans that changed, fetched again after the run's events (at most every
 * REFRESH_DELAY_MS); and the whole span the view selects, when it asks.
 */
class TraceView implements PanelView<TimelineProtocol> {
  private readonly feed = new TraceFeed();
  private readonly subscription: vscode.Disposable;
  private started = false;
  private title: string;
  private live = false;
  private spanCount = 0;
  /** The runs whose spans this trace holds: the run and its sub-agent runs. */
  private runs = new Set<string>();
  private shown: TimelineShown | null = null;
  private readonly refresher = new CoalescedRefresh(REFRESH_DELAY_MS, () => this.fetchAndPost());

  readonly answers = {
    getSpan: ({ runId, spanId }: { readonly runId: string; readonly spanId: string }) =>
      Promise.resolve(runId === this.runId ? (this.feed.span(spanId) ?? null) : null),
  };

  constructor(
    private readonly handle: PanelHandle<TimelineProtocol>,
    private readonly runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.title = runId;
    this.runs.add(runId);
    this.subscription = client.onRunEvent((event) => {
      if (!this.started || event.type === 'model_delta') return;
      // A sub-agent's events change this trace too: its spans are nested in it.
      const started = event.type === 'run_started' && event.run.parentRunId !== null && this.runs.has(event.run.parentRunId);
      if (started || this.runs.has(runIdOfEvent(event))) this.refresher.soon();
    });
  }

  ready(): void {
    // A fresh webview (opened, shown again, reloaded) has nothing: send it the whole trace.
    this.started = true;
    this.feed.reset();
    this.refresher.now();
  }

  receive(message: TimelineProtocol['fromView']): void {
    this.shown = message.shown;
  }

  snapshot(): TraceViewSnapshot {
    return { runId: this.runId, title: this.title, active: this.handle.active, live: this.live, spanCount: this.spanCount, shown: this.shown };
  }

  dispose(): void {
    this.refresher.dispose();
    this.subscription.dispose();
  }

  private async fetchAndPost(): Promise<void> {
    try {
      // An event of the run during this fetch brings another fetch after it, so the last fetch
      // sees how the run ended even if the two answers here straddle a change.
      const [{ run }, { spans, contentRecorded }] = await Promise.all([
        this.client.request('getRun', { runId: this.runId }),
        this.client.request('getTrace', { runId: this.runId }),
      ]);
      this.title = `${run.agent} · ${shortId(run.id)}`;
      this.handle.setTitle(`Trace · ${this.title}`);
      const live = run.state === 'running';
      const update = this.feed.update(spans);
      if (update.kind === 'full') {
        this.handle.post({ type: 'trace', runId: this.runId, title: this.title, live, contentRecorded, spans: update.spans });
      } else if (update.spans.length > 0 || live !== this.live) {
        this.handle.post({ type: 'patch', runId: this.runId, live, spans: update.spans });
      }
      this.live = live;
      this.spanCount = spans.length;
      this.runs = new Set([this.runId, ...spans.flatMap((span) => (span.kind === 'agent' ? [String(span.attributes['gen_ai.conversation.id'])] : []))]);
    } catch (error) {
      this.feed.reset();
      this.handle.post({ type: 'error', message: `Could not read the trace of ${this.runId}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
}
