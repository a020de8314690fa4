import * as vscode from 'vscode';
import { type RunEvent, runIdOfEvent } from '../../protocol/events';
import { statusText, statusTooltip } from '../../../webview/meter/model/meterView';
import type { RuntimeClient } from '../client/runtimeClient';
import { CoalescedRefresh } from '../ui/coalescedRefresh';

/** Run events come in bursts; the spend is fetched again at most this often. */
const REFRESH_DELAY_MS = 400;

/** The status bar item, as the internal test command reports it. */
export interface SpendStatusSnapshot {
  readonly visible: boolean;
  readonly runId: string | null;
  readonly text: string;
  readonly tooltip: string;
}

/**
 * A status bar item with the spend of the run the editor started last, while it runs (sub-agent
 * runs included): `$(pulse) $0.0123 · 2.1k tok`. A click opens the budget meter on it.
 */
export class SpendStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('keel.spend', vscode.StatusBarAlignment.Left, 40);
  private readonly disposables: vscode.Disposable[] = [this.item];
  /** Top-level runs running in the runtime process, oldest first: the last is shown. */
  private readonly running: string[] = [];
  /** Each sub-agent run's top-level run. */
  private readonly rootOf = new Map<string, string>();
  private readonly refresher = new CoalescedRefresh(REFRESH_DELAY_MS, () => this.refresh());
  private visible = false;

  constructor(private readonly client: RuntimeClient) {
    this.item.name = 'Keel: Run Spend';
    this.disposables.push(client.onRunEvent((event) => this.onEvent(event)));
  }

  snapshot(): SpendStatusSnapshot {
    const tooltip = this.item.tooltip;
    return {
      visible: this.visible,
      runId: this.running.at(-1) ?? null,
      text: this.item.text,
      tooltip: typeof tooltip === 'string' ? tooltip : (tooltip?.value ?? ''),
    };
  }

  dispose(): void {
    this.refresher.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }

  private onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'run_started': {
        const { run } = event;
        if (run.parentRunId === null) {
          if (!this.running.includes(run.id)) this.running.push(run.id);
          this.rootOf.set(run.id, run.id);
        } else {
          this.rootOf.set(run.id, this.rootOf.get(run.parentRunId) ?? run.parentRunId);
        }
        break;
      }
      case 'run_finished': {
        const index = this.running.indexOf(event.run.id);
        if (index >= 0 && event.run.state !== 'running') {
          this.running.splice(index, 1);
          for (const [child, root] of this.rootOf) if (root === event.run.id) this.rootOf.delete(child);
        }
        break;
      }
      case 'step_finished':
      case 'budget_warning':
        break;
      default:
        return;
    }
    if (this.running.length === 0) {
      this.item.hide();
      this.visible = false;
      return;
    }
    const root = this.rootOf.get(runIdOfEvent(event));
    if (root === undefined || root === this.running.at(-1) || event.type === 'run_finished') this.refresher.soon();
  }

  private async refresh(): Promise<void> {
    const runId = this.running.at(-1);
    if (!runId) return;
    const report = await this.client.request('getSpend', { runId });
    if (this.running.at(-1) !== runId) return;
    this.item.text = statusText(report);
    this.item.tooltip = statusTooltip(report, Date.now());
    this.item.command = { command: 'keel.showBudget', title: 'Show Budget', arguments: [runId] };
    this.item.show();
    this.visible = true;
  }
}
