import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/** One of Keel's webviews: its bundle in dist/, its stylesheet in media/, and what it says while it loads. */
export interface WebviewBundle {
  /** The bundle's name: `dist/<name>.js` and `media/<stylesheet>.css`. */
  readonly name: string;
  readonly stylesheet: string;
  readonly title: string;
  /** Shown until the script draws: a class and a sentence. */
  readonly loading: { readonly className: string; readonly text: string };
}

/** Scripts on, and only Keel's own files loadable: its bundles and its stylesheets. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** The page of a webview: a strict Content-Security-Policy, its stylesheet, and its script under a fresh nonce. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: WebviewBundle): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', `${bundle.name}.js`));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', `${bundle.stylesheet}.css`));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>${bundle.title}</title>
</head>
<body>
<div id="root"><p class="${bundle.loading.className}">${bundle.loading.text}</p></div>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}
