import * as vscode from 'vscode';

/** "Run agent" above each `defineAgent(` in an agent file. */
export class AgentCodeLensProvider implements vscode.CodeLensProvider {
  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const lenses: vscode.CodeLens[] = [];
    const text = document.getText();
    for (const match of text.matchAll(/\bdefineAgent\s*\(/g)) {
      const position = document.positionAt(match.index);
      lenses.push(
        new vscode.CodeLens(new vscode.Range(position, position), {
          title: '$(play) Run agent',
          command: 'keel.runAgent',
          arguments: [document.uri],
        }),
      );
    }
    return lenses;
  }
}
