import * as vscode from 'vscode';
import type { Review, ReviewVerdict } from '../../protocol/alerts';
import { compactArgs, truncate } from '../../shared/format';
import { describeRate, describeSuggestion } from '../../shared/reviewText';
import type { RuntimeClient } from '../client/runtimeClient';

/**
 * Review after the fact in the editor: the sampled calls waiting for a verdict in a quick pick,
 * a verdict with an optional note (the runtime records who and when), and the disagreement rate
 * per tool in a read-only document.
 */

interface ReviewPick extends vscode.QuickPickItem {
  readonly review: Review;
}

interface VerdictPick extends vscode.QuickPickItem {
  readonly verdict: ReviewVerdict;
}

const VERDICTS: readonly VerdictPick[] = [
  { label: 'Agree', description: 'it was right to go ahead without a person', verdict: 'agree' },
  { label: 'Disagree', description: 'a person should have decided it', verdict: 'disagree' },
];

/** Picks a sampled call and records a verdict on it, unless the person stops on the way. */
export async function reviewSampledCalls(client: RuntimeClient): Promise<void> {
  const pending = await client.request('listReviews', { status: 'pending' });
  if (pending.length === 0) {
    void vscode.window.showInformationMessage('Keel · No sampled calls wait for a verdict.');
    return;
  }
  const picked = await vscode.window.showQuickPick(
    pending.map(
      (review): ReviewPick => ({
        label: `${review.tool} ${truncate(compactArgs(review.args), 80)}`,
        description: `${review.agent} · run ${review.runId} step ${review.seq}`,
        detail: `${review.outcome.ok ? 'returned' : 'failed'}: ${truncate(review.outcome.content.replace(/\s+/g, ' '), 160)} · sampled: ${review.reason}`,
        review,
      }),
    ),
    { title: 'Keel: Review Sampled Calls', placeHolder: 'A call that ran without a person’s approval', matchOnDescription: true, matchOnDetail: true },
  );
  if (!picked) return;
  const verdict = await vscode.window.showQuickPick(VERDICTS, { title: `Should ${picked.review.tool} have gone ahead on its own?` });
  if (!verdict) return;
  const note = await vscode.window.showInputBox({ title: 'A note with the verdict (optional)', prompt: 'Why, for whoever reads the verdicts' });
  if (note === undefined) return;
  try {
    const recorded = await client.request('recordReview', { id: picked.review.id, verdict: verdict.verdict, note: note.trim() === '' ? null : note });
    void vscode.window.showInformationMessage(`Keel · ${recorded.verdict ?? verdict.verdict} on ${recorded.tool} recorded (${recorded.id}).`);
  } catch (error) {
    void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
  }
}

/** The disagreement rate per tool with its interval, and the thresholds the verdicts suggest, in a document beside the editor. */
export async function showReviewStats(client: RuntimeClient): Promise<void> {
  const stats = await client.request('reviewStats', {});
  const lines = ['# Keel review sampling', ''];
  if (stats.length === 0) lines.push('No sampled calls yet (keel.config.ts `review.sample`).');
  for (const tool of stats) {
    lines.push(`- **${tool.tool}**: disagreed with ${describeRate(tool.disagreed, tool.reviewed, tool.interval)}${tool.pending > 0 ? `, ${tool.pending} waiting for a verdict` : ''}`);
    if (tool.suggestion) lines.push(`  - Suggestion: ${describeSuggestion(tool.tool, tool.suggestion)}`);
  }
  const document = await vscode.workspace.openTextDocument({ language: 'markdown', content: `${lines.join('\n')}\n` });
  await vscode.window.showTextDocument(document, { preview: true, viewColumn: vscode.ViewColumn.Beside });
}
