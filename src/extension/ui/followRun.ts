import * as vscode from 'vscode';
import { RpcError } from '../../protocol/jsonRpc';
import { describeStep } from '../../shared/runText';
import type { Run } from '../../protocol/records';
import type { RuntimeClient } from '../client/runtimeClient';
import { outcomeMessage } from './runStatus';

export interface FollowRunDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
  readonly showRun: (runId: string) => void;
  readonly showTrace: (runId: string) => void;
}

/**
 * Starts or resumes a run with `begin`, shows its steps in a cancellable progress notification
 * until it stops, then says how it stopped. Returns the stopped run, or undefined when the
 * runtime refused to begin it; its sentence is then shown as an error.
 */
/**
 * VS Code keeps a progress notification up at least 800 ms after its window opened it (its
 * ProgressService closes one no sooner), which is a little after the extension asked. A run that
 * stops sooner holds its progress until then, with a margin, so the notification of how it
 * stopped never shows beside a progress still going.
 */
const PROGRESS_MIN_VISIBLE_MS = 1000;

export async function followRun(
  deps: FollowRunDeps,
  title: string,
  begin: () => Promise<{ readonly runId: string }>,
): Promise<Run | undefined> {
  let stopped: Run;
  try {
    stopped = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        const opened = Date.now();
        const { runId } = await begin();
        const events = deps.client.onRunEvent((event) => {
          if (event.type === 'step_started' && event.step.runId === runId) {
            progress.report({ message: `step ${event.step.seq}: ${event.step.kind === 'model' ? 'thinking…' : event.step.name}` });
          } else if (event.type === 'step_finished' && event.step.runId === runId) {
            progress.report({ message: `step ${event.step.seq}: ${describeStep(event.step, 60)}` });
          }
        });
        const cancel = token.onCancellationRequested(() => void deps.client.request('cancelRun', { runId }));
        try {
          const run = await deps.client.waitForRun(runId);
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, PROGRESS_MIN_VISIBLE_MS - (Date.now() - opened))));
          return run;
        } finally {
          events.dispose();
          cancel.dispose();
        }
      },
    );
  } catch (error) {
    // Not awaited: the error message settles only when the person dismisses it.
    void reportRefusal(error, deps.log);
    return undefined;
  }
  void announce(stopped, deps);
  return stopped;
}

async function announce(run: Run, deps: FollowRunDeps): Promise<void> {
  // A run paused for a decision is announced by the notification of its approval, with the decisions.
  if (run.state === 'waiting_approval') return;
  const { severity, text } = outcomeMessage(run);
  const show = 'Show Run';
  const trace = 'Show Trace';
  const choice = await (severity === 'info'
    ? vscode.window.showInformationMessage(text, show, trace)
    : severity === 'warning'
      ? vscode.window.showWarningMessage(text, show, trace)
      : vscode.window.showErrorMessage(text, show, trace));
  if (choice === show) deps.showRun(run.id);
  else if (choice === trace) deps.showTrace(run.id);
}

/**
 * A run that cannot start or go on (a broken agent file, a bad model spec, a run waiting for a
 * decision) is the person's to fix: say why, and where when the runtime names a file.
 */
export async function reportRefusal(error: unknown, log: vscode.LogOutputChannel): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  log.error(message);
  const context = error instanceof RpcError ? error.data.context : undefined;
  const file = typeof context?.['file'] === 'string' ? context['file'] : undefined;
  const line = typeof context?.['line'] === 'number' ? context['line'] : undefined;
  const open = 'Open File';
  const choice = await vscode.window.showErrorMessage(message, ...(file ? [open] : []));
  if (choice === open && file) {
    const position = new vscode.Position(Math.max(0, (line ?? 1) - 1), Math.max(0, Number(context?.['column'] ?? 1) - 1));
    await vscode.window.showTextDocument(vscode.Uri.file(file), { selection: new vscode.Range(position, position) });
  }
}
