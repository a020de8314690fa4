import * as vscode from 'vscode';
import type { StoppedAt } from '../../protocol/debug';

/** The step a fork document forks, by the document's URI. */
export interface Draft {
  readonly runId: string;
  readonly seq: number;
}

/** Fork documents being edited (untitled JSON with comments), each with Start Fork and Discard above it. */
export class ForkDrafts implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly drafts = new Map<string, Draft>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      vscode.languages.registerCodeLensProvider({ scheme: 'untitled', language: 'jsonc' }, this),
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (this.drafts.delete(document.uri.toString())) void this.updateContext();
      }),
    );
  }

  async open(at: StoppedAt, text: string): Promise<vscode.TextDocument> {
    const document = await vscode.workspace.openTextDocument({ language: 'jsonc', content: text });
    this.drafts.set(document.uri.toString(), { runId: at.runId, seq: at.seq });
    await this.updateContext();
    await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
    return document;
  }

  get(uri: vscode.Uri): Draft | undefined {
    return this.drafts.get(uri.toString());
  }

  /** Closes a draft without asking to save it: the fork holds what it said. */
  async close(document: vscode.TextDocument): Promise<void> {
    await vscode.window.showTextDocument(document, { preview: false });
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const draft = this.get(document.uri);
    if (!draft) return [];
    const top = new vscode.Range(0, 0, 0, 0);
    return [
      new vscode.CodeLens(top, { title: `$(repo-forked) Start Fork of ${draft.runId} at step ${draft.seq}`, command: 'keel.startFork', arguments: [document.uri] }),
      new vscode.CodeLens(top, { title: 'Discard', command: 'workbench.action.revertAndCloseActiveEditor' }),
    ];
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }

  /** Offers Keel: Start Fork in the palette while a draft is open. */
  private async updateContext(): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'keel.forkDraftOpen', this.drafts.size > 0);
  }
}
