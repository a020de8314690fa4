import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { RpcError } from '../protocol/jsonRpc';
import { describeStep, formatDuration, runDuration, truncate } from '../runtime/format';
import type { RunRecord } from '../runtime/store/checkpointStore';
import type { RuntimeClient } from './runtimeClient';

export interface RunAgentDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
  readonly memory: vscode.Memento;
  readonly showRun: (runId: string) => void;
}

/**
 * Keel: Run Agent…: pick an agent file (unless given), ask for the input (unless given), run it
 * with cancellable progress, then show the result. Returns the finished run, or undefined when
 * the person backed out or the run could not start.
 */
export async function runAgent(deps: RunAgentDeps, file?: vscode.Uri, input?: string): Promise<RunRecord | undefined> {
  const agentFile = file ?? (await pickAgentFile());
  if (!agentFile) return undefined;
  const memoryKey = `keel.lastInput:${agentFile.fsPath}`;
  const text =
    input ??
    (await vscode.window.showInputBox({
      title: `Run ${basename(agentFile.fsPath)}`,
      prompt: 'What should the agent do?',
      placeHolder: 'Book the cheapest flight from NYC to LIS on 2026-12-10',
      value: deps.memory.get<string>(memoryKey) ?? '',
      ignoreFocusOut: true,
    }));
  if (text === undefined) return undefined;
  await deps.memory.update(memoryKey, text);

  const model = vscode.workspace.getConfiguration('keel').get<string>('model')?.trim();
  let finished: RunRecord;
  try {
    finished = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Keel · ${basename(agentFile.fsPath)}`, cancellable: true },
      async (progress, token) => {
        const { runId } = await deps.client.request('startRun', {
          agentFile: agentFile.fsPath,
          input: text,
          ...(model ? { model } : {}),
        });
        const events = deps.client.onRunEvent((event) => {
          if (event.type === 'step_started' && event.step.runId === runId) {
            progress.report({ message: `step ${event.step.seq}: ${event.step.kind === 'model' ? 'thinking…' : event.step.name}` });
          } else if (event.type === 'step_finished' && event.step.runId === runId) {
            progress.report({ message: `step ${event.step.seq}: ${describeStep(event.step, 60)}` });
          }
        });
        const cancel = token.onCancellationRequested(() => void deps.client.request('cancelRun', { runId }));
        try {
          return await deps.client.waitForRun(runId);
        } finally {
          events.dispose();
          cancel.dispose();
        }
      },
    );
  } catch (error) {
    // Not awaited: the error message settles only when the person dismisses it.
    void reportStartFailure(error, deps.log);
    return undefined;
  }
  void announce(finished, deps.showRun);
  return finished;
}

async function pickAgentFile(): Promise<vscode.Uri | undefined> {
  const glob = vscode.workspace.getConfiguration('keel').get<string>('agentFiles') ?? '**/*.agent.ts';
  const files = await vscode.workspace.findFiles(glob, '**/node_modules/**', 500);
  if (files.length === 0) {
    void vscode.window.showWarningMessage(`Keel found no agent files matching ${glob} in this workspace.`);
    return undefined;
  }
  files.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  const picked = await vscode.window.showQuickPick(
    files.map((uri) => ({
      label: basename(uri.fsPath),
      description: dirname(vscode.workspace.asRelativePath(uri, true)),
      uri,
    })),
    { title: 'Keel: Run Agent', placeHolder: 'Pick an agent file', matchOnDescription: true },
  );
  return picked?.uri;
}

async function announce(run: RunRecord, showRun: (runId: string) => void): Promise<void> {
  const took = formatDuration(runDuration(run));
  const show = 'Show Run';
  let choice: string | undefined;
  if (run.state === 'completed') {
    choice = await vscode.window.showInformationMessage(
      `Keel · ${run.agent} completed in ${took}: ${truncate(run.result ?? '', 200)}`,
      show,
    );
  } else if (run.state === 'cancelled') {
    choice = await vscode.window.showInformationMessage(`Keel · ${run.agent} was cancelled.`, show);
  } else {
    choice = await vscode.window.showErrorMessage(`Keel · ${run.agent} failed: ${truncate(run.error ?? '', 300)}`, show);
  }
  if (choice === show) showRun(run.id);
}

/** A run that cannot start (a broken agent file, a bad model spec) is the person's to fix: say where. */
async function reportStartFailure(error: unknown, log: vscode.LogOutputChannel): Promise<void> {
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
