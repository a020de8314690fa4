import * as vscode from 'vscode';
import { comparedRunIds, comparisonKey, type ComparisonProtocol } from '../../protocol/webview';
import { shortId } from '../../shared/format';
import type { RuntimeClient } from '../client/runtimeClient';
import { pickRecentRun } from '../ui/pickRun';
import { runIdOf, type RunRow } from '../ui/runTarget';
import { WebviewPanels, type PanelHandle, type PanelView } from '../ui/webviewPanels';

/** The run comparison: one panel, showing the pair of runs asked for last. */
export type ComparePanels = WebviewPanels<ComparisonProtocol, CompareView>;

export function comparePanels(extensionUri: vscode.Uri, client: RuntimeClient, showStep: (runId: string, seq: number) => void): ComparePanels {
  return new WebviewPanels(extensionUri, {
    viewType: 'keel.compare',
    bundle: { name: 'compare', stylesheet: 'compareView', title: 'Keel run comparison', loading: { className: 'loading', text: 'Comparing runs…' } },
    tabTitle: 'Compare',
    single: true,
    open: (handle, key) => new CompareView(handle, key, client, showStep),
  });
}

/** Opens the comparison of two runs (A, then B). */
export function showComparison(panels: ComparePanels, runA: string, runB: string): void {
  panels.show(comparisonKey(runA, runB));
}

/**
 * Keel: Compare Runs: from the Runs view, the two runs selected (or the run and another picked);
 * from elsewhere, two run ids, or two runs picked from the recent runs.
 */
export async function compareRunsCommand(client: RuntimeClient, panels: ComparePanels, first?: string | RunRow, selected?: readonly RunRow[]): Promise<void> {
  const rows = (selected ?? []).filter((row) => row.kind === 'run');
  if (rows.length > 2) {
    void vscode.window.showErrorMessage('Keel compares two runs at a time: select two runs in the Runs view.');
    return;
  }
  if (rows.length === 2) {
    showComparison(panels, runIdOf(rows[0] as RunRow), runIdOf(rows[1] as RunRow));
    return;
  }
  try {
    const runA = first === undefined ? (await pickRecentRun(client, 'Keel: Compare Runs · run A'))?.id : runIdOf(first);
    if (!runA) return;
    const runB = (await pickRecentRun(client, `Keel: Compare ${shortId(runA)} with…`, runA))?.id;
    if (runB) showComparison(panels, runA, runB);
  } catch (error) {
    void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
  }
}

/** One panel's feed: the comparison of its pair, fetched when the webview is ready; a step's link opens that run's Run view there. */
class CompareView implements PanelView<ComparisonProtocol> {
  readonly answers = {};
  /** What the panel shows: its pair, and the first difference once the comparison came (null: none). */
  shown: { readonly runA: string; readonly runB: string; readonly first: string | null } | undefined;

  constructor(
    private readonly handle: PanelHandle<ComparisonProtocol>,
    private key: string,
    private readonly client: RuntimeClient,
    private readonly showStep: (runId: string, seq: number) => void,
  ) {}

  show(key: string): void {
    this.key = key;
    this.ready();
  }

  ready(): void {
    const pair = comparedRunIds(this.key);
    if (!pair) {
      this.handle.post({ type: 'error', message: `Keel cannot read the pair of runs "${this.key}".` });
      return;
    }
    const key = this.key;
    this.client.request('compareRuns', pair).then(
      (comparison) => {
        if (key !== this.key) return;
        this.handle.setTitle(`${shortId(pair.runA)} ↔ ${shortId(pair.runB)}`);
        this.shown = { ...pair, first: comparison.first?.text ?? null };
        this.handle.post({ type: 'comparison', comparison });
      },
      (error: unknown) => {
        if (key === this.key) this.handle.post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  receive(message: ComparisonProtocol['fromView']): void {
    if (message.type === 'openStep') this.showStep(message.runId, message.seq);
  }

  dispose(): void {}
}
