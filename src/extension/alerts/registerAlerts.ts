import * as vscode from 'vscode';
import type { EditorAlert } from '../../protocol/alerts';
import type { EditorSettings } from '../client/settings';
import type { FollowRunDeps } from '../ui/followRun';
import { Notifier, type ToastButton } from '../ui/notifier';
import { reviewSampledCalls, showReviewStats } from './reviewQueue';
import { ReviewTree, recordVerdict, type ReviewNode } from './reviewTree';

export interface AlertsDeps extends FollowRunDeps {
  readonly editor: EditorSettings;
  /** Fires when another process changed the run database (a verdict from the CLI, a new sample). */
  readonly databaseChanged: vscode.Event<void>;
}

/** What `keel._test.pressAlertAction` takes: a button of the notification of an alert, to press as a click does. */
interface PressParams {
  readonly alertId: string;
  readonly label: string;
}

/**
 * Alerts and review sampling in the editor: the alerts keel.config.ts sends to an `editor` channel
 * become notifications whose buttons open the run or its trace; calls sampled for review are
 * announced, listed in the Review view (with Agree and Disagree on each, and the disagreement rate
 * per tool) and reviewed from the palette; and keel.config.ts is read again when it changes, so
 * new rules apply without a reload.
 */
export function registerAlerts(context: vscode.ExtensionContext, deps: AlertsDeps): void {
  const { client, log, editor } = deps;
  const notifier = new Notifier<void, void>(log, undefined);
  const reviews = new ReviewTree(client);
  const refreshReviews = () => reviews.refresh().catch((error: unknown) => log.error(`Could not list the sampled calls: ${error instanceof Error ? error.message : String(error)}`));
  const review = () => reviewSampledCalls(client).then(refreshReviews);
  const configFile = vscode.workspace.workspaceFolders?.[0];
  const watcher = configFile ? vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(configFile, 'keel.config.ts')) : undefined;
  let reads = 0;
  const reread = () => {
    if (!client.connected) return;
    client.request('configure', { settings: editor.runtimeSettings() }).then(
      () => {
        reads++;
        log.info('keel.config.ts changed: the runtime process read it again.');
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        log.error(`Could not apply keel.config.ts: ${message}`);
        void vscode.window.showErrorMessage(message);
      },
    );
  };
  context.subscriptions.push(
    client.onAlert((alert) => {
      log.info(`alert ${alert.id} (${alert.event}): ${alert.title}\n${alert.body}`);
      notifier.show(alertMessage(alert), alertButtons(alert, deps), [alert.id], false, alert.severity);
    }),
    reviews,
    vscode.window.createTreeView('keel.review', { treeDataProvider: reviews }),
    vscode.commands.registerCommand('keel.refreshReviews', refreshReviews),
    vscode.commands.registerCommand('keel.agreeReview', (target: ReviewNode | string) => recordVerdict(client, reviews, target, 'agree')),
    vscode.commands.registerCommand('keel.disagreeReview', (target: ReviewNode | string, note?: string) => recordVerdict(client, reviews, target, 'disagree', note)),
    client.onDidStart(() => void refreshReviews()),
    deps.databaseChanged(() => void refreshReviews()),
    client.onReviewsQueued(({ count, tools }) => {
      void refreshReviews();
      const text = `Keel · ${count === 1 ? 'a call' : `${count} calls`} of ${tools.join(', ')} that ran without approval ${count === 1 ? 'was' : 'were'} sampled for review.`;
      notifier.show(text, [{ label: 'Review', run: review }], ['reviews'], false, 'info');
    }),
    vscode.commands.registerCommand('keel.reviewSampledCalls', review),
    vscode.commands.registerCommand('keel.showReviewStats', () => showReviewStats(client)),
    ...(watcher ? [watcher, watcher.onDidChange(reread), watcher.onDidCreate(reread), watcher.onDidDelete(reread)] : []),
    // For integration tests, which must not import the extension's modules: the alert notifications, their buttons, and how often keel.config.ts was read again.
    vscode.commands.registerCommand('keel._test.alerts', () => ({ toasts: notifier.records(), configReads: reads })),
    vscode.commands.registerCommand('keel._test.reviewView', async () => {
      await reviews.refresh();
      return reviews.snapshot();
    }),
    vscode.commands.registerCommand('keel._test.recordedReviews', () => client.request('listReviews', { status: 'reviewed' })),
    vscode.commands.registerCommand('keel._test.pressAlertAction', ({ alertId, label }: PressParams) => notifier.press(alertId, label, undefined) ?? null),
  );
}

/** `Keel · Run run_… (travel) failed`: the alert's one line. */
export function alertMessage(alert: EditorAlert): string {
  return `Keel · ${alert.title}`;
}

function alertButtons(alert: EditorAlert, deps: FollowRunDeps): ToastButton<void, void>[] {
  const { runId } = alert;
  if (runId === null) return [];
  return [
    { label: 'Show Run', run: () => Promise.resolve(deps.showRun(runId)) },
    { label: 'Show Trace', run: () => Promise.resolve(deps.showTrace(runId)) },
  ];
}
