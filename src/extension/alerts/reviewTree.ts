import * as vscode from 'vscode';
import type { Review, ReviewToolStats, ReviewVerdict } from '../../protocol/alerts';
import { compactArgs, formatAgo, shortId, truncate } from '../../shared/format';
import { describeRate, describeSuggestion } from '../../shared/reviewText';
import type { RuntimeClient } from '../client/runtimeClient';

/**
 * The Review view: the sampled calls that ran without a person's approval and wait for a verdict
 * (agent, tool, arguments, run, age), each with Agree and Disagree inline; and a node with the
 * disagreement rate per tool, its 95% interval and the threshold the verdicts suggest, as
 * `keel review --stats` says them. Verdicts go through the runtime process, which records who and
 * when as `keel review <id> agree|disagree` does.
 */
export type ReviewNode =
  | { readonly kind: 'review'; readonly review: Review }
  | { readonly kind: 'stats'; readonly stats: readonly ReviewToolStats[] }
  | { readonly kind: 'tool'; readonly stats: ReviewToolStats }
  | { readonly kind: 'suggestion'; readonly tool: string; readonly text: string };

export class ReviewTree implements vscode.TreeDataProvider<ReviewNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private pending: readonly Review[] = [];
  private stats: readonly ReviewToolStats[] = [];

  constructor(private readonly client: RuntimeClient) {}

  async refresh(): Promise<void> {
    if (!this.client.connected) return;
    const [pending, stats] = await Promise.all([this.client.request('listReviews', { status: 'pending' }), this.client.request('reviewStats', {})]);
    this.pending = pending;
    this.stats = stats;
    this.changed.fire();
  }

  getChildren(node?: ReviewNode): ReviewNode[] {
    if (!node) {
      const reviews = this.pending.map((review): ReviewNode => ({ kind: 'review', review }));
      return this.stats.length === 0 ? reviews : [{ kind: 'stats', stats: this.stats }, ...reviews];
    }
    if (node.kind === 'stats') return node.stats.map((stats): ReviewNode => ({ kind: 'tool', stats }));
    if (node.kind === 'tool' && node.stats.suggestion) return [{ kind: 'suggestion', tool: node.stats.tool, text: describeSuggestion(node.stats.tool, node.stats.suggestion) }];
    return [];
  }

  getTreeItem(node: ReviewNode): vscode.TreeItem {
    switch (node.kind) {
      case 'review':
        return reviewItem(node.review);
      case 'stats': {
        const item = new vscode.TreeItem('Disagreement by tool', vscode.TreeItemCollapsibleState.Expanded);
        item.iconPath = new vscode.ThemeIcon('graph');
        item.contextValue = 'review.stats';
        return item;
      }
      case 'tool': {
        const { stats } = node;
        const item = new vscode.TreeItem(stats.tool, stats.suggestion ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.description = `disagreed with ${describeRate(stats.disagreed, stats.reviewed, stats.interval)}${stats.pending > 0 ? `, ${stats.pending} waiting` : ''}`;
        item.tooltip = `${stats.tool}: ${item.description}`;
        item.iconPath = new vscode.ThemeIcon('symbol-method');
        return item;
      }
      case 'suggestion': {
        const item = new vscode.TreeItem('Suggested threshold');
        item.description = node.text;
        item.tooltip = new vscode.MarkdownString().appendText(node.text);
        item.iconPath = new vscode.ThemeIcon('lightbulb');
        return item;
      }
    }
  }

  /** What the view shows, for the integration tests (which must not import the extension's modules). */
  snapshot(): { readonly reviews: readonly { id: string; runId: string; label: string; description: string }[]; readonly tools: readonly { label: string; description: string; suggestion: string | null }[] } {
    return {
      reviews: this.pending.map((review) => {
        const item = reviewItem(review);
        return { id: review.id, runId: review.runId, label: String(item.label), description: String(item.description) };
      }),
      tools: this.stats.map((stats) => {
        const item = this.getTreeItem({ kind: 'tool', stats });
        return { label: String(item.label), description: String(item.description), suggestion: stats.suggestion ? describeSuggestion(stats.tool, stats.suggestion) : null };
      }),
    };
  }

  dispose(): void {
    this.changed.dispose();
  }
}

function reviewItem(review: Review): vscode.TreeItem {
  const item = new vscode.TreeItem(`${review.tool} ${truncate(compactArgs(review.args), 60)}`);
  item.id = review.id;
  item.description = `${review.agent} · run ${shortId(review.runId)} step ${review.seq} · ${formatAgo(Date.now() - review.sampledAt)}`;
  item.tooltip = new vscode.MarkdownString()
    .appendMarkdown(`**${review.tool}** (${review.effect}) by ${review.agent}, run ${review.runId} step ${review.seq}\n\n`)
    .appendCodeblock(JSON.stringify(review.args, null, 2), 'json')
    .appendMarkdown(`\n\n${review.outcome.ok ? 'Returned' : 'Failed'}:\n\n`)
    .appendCodeblock(truncate(review.outcome.content, 1000), 'text')
    .appendMarkdown(`\n\nSampled: `)
    .appendText(review.reason);
  item.iconPath = new vscode.ThemeIcon(review.outcome.ok ? 'eye' : 'warning');
  item.contextValue = 'review.pending';
  item.command = { command: 'keel.showRun', title: 'Show Run', arguments: [review.runId, review.seq] };
  return item;
}

/**
 * Records a verdict on a sampled call from the view (or by review id): a disagreement asks for a
 * note (why, for whoever reads the verdicts) unless one is given; an agreement takes none.
 * Resolves with whether a verdict was recorded.
 */
export async function recordVerdict(client: RuntimeClient, tree: ReviewTree, target: ReviewNode | string, verdict: ReviewVerdict, given?: string): Promise<boolean> {
  const id = typeof target === 'string' ? target : target.kind === 'review' ? target.review.id : undefined;
  if (!id) return false;
  let note: string | null = null;
  if (verdict === 'disagree') {
    const written = given ?? (await vscode.window.showInputBox({ title: 'Disagree: a note with the verdict', prompt: 'Why a person should have decided this call, for whoever reads the verdicts', ignoreFocusOut: true }));
    if (written === undefined) return false;
    note = written.trim() === '' ? null : written.trim();
  }
  try {
    await client.request('recordReview', { id, verdict, note });
    return true;
  } catch (error) {
    void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    return false;
  } finally {
    await tree.refresh().catch(() => undefined);
  }
}
