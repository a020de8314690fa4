import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import type { Run, RunForecast } from '../../protocol/records';
import { followRun, type FollowRunDeps } from '../ui/followRun';
import { runPrompt, runWarning } from '../budget/spendText';

export interface RunAgentDeps extends FollowRunDeps {
  readonly memory: vscode.Memento;
}

/**
 * Keel: Run Agent…: pick an agent file (unless given), ask for the input (unless given), run it
 * with cancellable progress, then show how it stopped. Returns the run as it stopped, or undefined
 * when the person backed out or the run could not start.
 */
export async function runAgent(deps: RunAgentDeps, file?: vscode.Uri, input?: string): Promise<Run | undefined> {
  const agentFile = file ?? (await pickAgentFile());
  if (!agentFile) return undefined;
  const memoryKey = `keel.lastInput:${agentFile.fsPath}`;
  const model = vscode.workspace.getConfiguration('keel').get<string>('model')?.trim();
  const text = input ?? (await askInput(agentFile, await forecastFor(deps, agentFile, model), deps.memory.get<string>(memoryKey) ?? ''));
  if (text === undefined) return undefined;
  await deps.memory.update(memoryKey, text);

  return followRun(deps, `Keel · ${basename(agentFile.fsPath)}`, () =>
    deps.client.request('startRun', { agentFile: agentFile.fsPath, input: text, ...(model ? { model } : {}) }),
  );
}

/** The run input box: the forecast in its prompt, and under it, as a warning that does not stop the run, the budgets it says will likely not do. */
function askInput(agentFile: vscode.Uri, forecast: RunForecast | null, value: string): Thenable<string | undefined> {
  const warning = runWarning(forecast);
  return vscode.window.showInputBox({
    title: `Run ${basename(agentFile.fsPath)}`,
    prompt: runPrompt(forecast),
    placeHolder: 'Book the cheapest flight from NYC to LIS on 2026-12-10',
    value,
    ignoreFocusOut: true,
    ...(warning ? { validateInput: () => ({ message: warning, severity: vscode.InputBoxValidationSeverity.Warning }) } : {}),
  });
}

/** How long the run prompt waits for the forecast (the first request may start the runtime process). */
const FORECAST_WAIT_MS = 3000;

/** What earlier runs of the agent in this file cost, if any ended, against its budgets; never holds the prompt up for long. */
async function forecastFor(deps: RunAgentDeps, agentFile: vscode.Uri, model: string | undefined): Promise<RunForecast | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), FORECAST_WAIT_MS);
  });
  const asked = deps.client.request('forecast', { agentFile: agentFile.fsPath, ...(model ? { model } : {}) }).then(
    (forecast) => forecast,
    (error: unknown) => {
      deps.log.info(`No cost forecast for ${agentFile.fsPath}: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    },
  );
  try {
    return await Promise.race([asked, late]);
  } finally {
    clearTimeout(timer);
  }
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
