import type * as vscode from 'vscode';
import { runIdOfEvent, type RunEvent } from '../../protocol/events';
import type { MeterProtocol, MeterShown } from '../../protocol/meter';
import { shortId } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { CoalescedRefresh } from '../ui/coalescedRefresh';
import { WebviewPanels, type PanelHandle, type PanelKind, type PanelView } from '../ui/webviewPanels';

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
 * live while it goes.
 */
export type BudgetMeter = WebviewPanels<MeterProtocol, MeterView>;

export function budgetMeter(extensionUri: vscode.Uri, client: RuntimeClient): BudgetMeter {
  const kind: PanelKind<MeterProtocol, MeterView> = {
    viewType: 'keel.meter',
    bundle: { name: 'meter', stylesheet: 'meter', title: 'Keel budget', loading: { className: 'empty', text: 'Loading the budget…' } },
    tabTitle: 'Budget',
    single: true,
    open: (handle, runId) => new MeterView(handle, runId, client),
  };
  return new WebviewPanels(extensionUri, kind);
}

/**
 * The meter's feed: once the webview is ready, the run's spend report; then, after the events of
 * the run and its sub-agent runs that change it, the report again (at most every
 * REFRESH_DELAY_MS); budget warnings as they come.
 */
class MeterView implements PanelView<MeterProtocol> {
  readonly answers = {};
  private readonly subscription: vscode.Disposable;
  /** The run and its sub-agent runs, as the last report named them: their events matter. */
  private tree: Set<string>;
  private started = false;
  private title: string;
  private reports = 0;
  private shown: MeterShown | null = null;
  private readonly refresher = new CoalescedRefresh(REFRESH_DELAY_MS, () => this.fetchAndPost());

  constructor(
    private readonly handle: PanelHandle<MeterProtocol>,
    private runId: string,
    private readonly client: RuntimeClient,
  ) {
    this.tree = new Set([runId]);
    this.title = runId;
    this.subscription = client.onRunEvent((event) => this.onEvent(event));
  }

  ready(): void {
    // A fresh webview (opened, shown again, reloaded) has nothing: send it the report.
    this.started = true;
    this.refresh();
  }

  receive(message: MeterProtocol['fromView']): void {
    switch (message.type) {
      case 'shown':
        if (message.shown.runId === this.runId) this.shown = message.shown;
        break;
      case 'selectRun':
        this.show(message.runId);
        break;
    }
  }

  /** Shows another run. */
  show(runId: string): void {
    if (runId !== this.runId) {
      this.runId = runId;
      this.tree = new Set([runId]);
      this.title = runId;
      this.shown = null;
    }
    this.refresh();
  }

  snapshot(): MeterSnapshot {
    return { runId: this.runId, title: this.title, active: this.handle.active, reports: this.reports, shown: this.shown };
  }

  dispose(): void {
    this.refresher.dispose();
    this.subscription.dispose();
  }

  private onEvent(event: RunEvent): void {
    if (!this.started) return;
    const runId = runIdOfEvent(event);
    const ours = this.tree.has(runId) || (event.type === 'run_started' && event.run.parentRunId !== null && this.tree.has(event.run.parentRunId));
    if (!ours) return;
    switch (event.type) {
      case 'budget_warning':
        this.handle.post({ type: 'warning', event });
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
    if (this.started) this.refresher.now();
  }

  private async fetchAndPost(): Promise<void> {
    const runId = this.runId;
    try {
      const report = await this.client.request('getSpend', { runId });
      if (runId !== this.runId) return;
      this.tree = new Set([runId, ...report.subRuns.map((run) => run.id)]);
      this.title = `${report.run.agent} · ${shortId(runId)}`;
      this.handle.setTitle(`Budget · ${this.title}`);
      this.reports += 1;
      this.handle.post({ type: 'spend', report });
    } catch (error) {
      this.handle.post({ type: 'error', message: `Could not read the spend of ${runId}: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
}
