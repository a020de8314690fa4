import * as vscode from 'vscode';
import type { RuntimeClient } from '../client/runtimeClient';
import { showRunCommand } from '../ui/pickRun';
import type { TracePanels } from './tracePanel';

/** The Trace timeline: of a given run (Runs view, notifications), or of one picked from the recent runs. */
export function registerTraces(context: vscode.ExtensionContext, client: RuntimeClient, traces: TracePanels): void {
  const show = showRunCommand(client, 'Keel: Show Trace', (runId) => traces.show(runId));
  context.subscriptions.push(
    vscode.commands.registerCommand('keel.showTrace', show),
    vscode.commands.registerCommand('keel.chooseTrace', () => show()),
    // For integration tests: the open Trace timelines and what each webview said it shows.
    vscode.commands.registerCommand('keel._test.traceViews', () => traces.views().map((view) => view.snapshot())),
  );
}
