import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { HostToView, PanelState, ViewProtocol, ViewToHost } from '../../protocol/webview';
import { shortId } from '../../shared/format';

/** One of Keel's webviews: its bundle in dist/, its stylesheet in media/, and what it says while it loads. */
export interface WebviewBundle {
  /** The bundle's name: `dist/<name>.js`. */
  readonly name: string;
  /** `media/<stylesheet>.css`. */
  readonly stylesheet: string;
  readonly title: string;
  /** Shown until the script draws: a class and a sentence. */
  readonly loading: { readonly className: string; readonly text: string };
}

/** What a view's feed has of its panel: it posts to the webview and names the tab. */
export interface PanelHandle<P extends ViewProtocol> {
  /** Posts to the webview; nothing once the panel is closed (a fetch may finish after). */
  post(message: P['toView']): void;
  setTitle(title: string): void;
  readonly active: boolean;
}

type Answers<R> = { readonly [M in keyof R]: (params: R[M] extends { params: infer T } ? T : never) => Promise<R[M] extends { result: infer T } ? T : never> };

/** What feeds one panel: it hears the webview's messages and answers its requests. */
export interface PanelView<P extends ViewProtocol> extends vscode.Disposable {
  /** The webview (re)loaded and has nothing: send it what it shows. */
  ready(): void;
  receive(message: P['fromView']): void;
  readonly answers: Answers<P['requests']>;
  /** A panel that shows one run at a time shows another. */
  show?(runId: string): void;
}

/** One kind of Keel panel: its webview, and the feed of each panel opened on a run. */
export interface PanelKind<P extends ViewProtocol, V extends PanelView<P>> {
  /** The panel's view type, under which VS Code restores it after a reload. */
  readonly viewType: string;
  readonly bundle: WebviewBundle;
  /** The tab's title before the feed names it: `<tabTitle> <short run id>`. */
  readonly tabTitle: string;
  /** One panel that shows each run asked for in turn (`show` on its view), or one panel per run. */
  readonly single: boolean;
  open(handle: PanelHandle<P>, runId: string): V;
}

interface Open<V> {
  readonly panel: vscode.WebviewPanel;
  readonly view: V;
}

/**
 * The host of one kind of Keel webview panel: it opens a panel on a run (or reveals the one open),
 * serves the webview's page (a strict Content-Security-Policy with a fresh nonce, scripts and
 * styles only from Keel's dist/ and media/), passes the view's messages to its feed (`ready` when
 * the webview has loaded, which it does again each time it is shown; requests, answered by id),
 * and restores its panels after a window reload from the state the views saved.
 */
export class WebviewPanels<P extends ViewProtocol, V extends PanelView<P>> implements vscode.Disposable {
  private readonly open = new Map<string, Open<V>>();
  private readonly registration: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly kind: PanelKind<P, V>,
  ) {
    this.registration = vscode.window.registerWebviewPanelSerializer(kind.viewType, {
      deserializeWebviewPanel: (panel: vscode.WebviewPanel, state: unknown) => {
        const runId = (state as Partial<PanelState> | undefined)?.runId;
        if (typeof runId !== 'string' || this.open.has(this.keyOf(runId))) panel.dispose();
        else this.attach(panel, runId);
        return Promise.resolve();
      },
    });
  }

  show(runId: string): void {
    const existing = this.open.get(this.keyOf(runId));
    if (existing) {
      existing.view.show?.(runId);
      existing.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(this.kind.viewType, `${this.kind.tabTitle} ${shortId(runId)}`, vscode.ViewColumn.Active, this.options());
    this.attach(panel, runId);
  }

  /** The feeds of the panels open now. */
  views(): V[] {
    return [...this.open.values()].map(({ view }) => view);
  }

  dispose(): void {
    for (const { panel } of [...this.open.values()]) panel.dispose();
    this.registration.dispose();
  }

  private keyOf(runId: string): string {
    return this.kind.single ? '' : runId;
  }

  /** Scripts on, and only Keel's own files loadable: its bundles and its stylesheets. */
  private options(): vscode.WebviewOptions {
    return {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
  }

  private attach(panel: vscode.WebviewPanel, runId: string): void {
    panel.webview.options = this.options();
    panel.webview.html = this.html(panel.webview);
    let disposed = false;
    const post = (message: HostToView<P>) => {
      if (!disposed) void panel.webview.postMessage(message);
    };
    const handle: PanelHandle<P> = {
      post,
      setTitle: (title) => {
        if (!disposed) panel.title = title;
      },
      get active() {
        return panel.active;
      },
    };
    const view = this.kind.open(handle, runId);
    const key = this.keyOf(runId);
    this.open.set(key, { panel, view });
    const received = panel.webview.onDidReceiveMessage((message: ViewToHost<P>) => {
      if (message.type === 'ready') view.ready();
      else if (isRequest(message)) void this.answer(view, message, post);
      else view.receive(message as P['fromView']);
    });
    panel.onDidDispose(() => {
      disposed = true;
      if (this.open.get(key)?.panel === panel) this.open.delete(key);
      received.dispose();
      view.dispose();
    });
  }

  private async answer(view: V, request: ViewRequestMessage, post: (message: HostToView<P>) => void): Promise<void> {
    const answer = (view.answers as Readonly<Record<string, ((params: unknown) => Promise<unknown>) | undefined>>)[request.method];
    try {
      if (!answer) throw new Error(`This view answers no ${request.method}.`);
      post({ type: 'reply', id: request.id, result: await answer(request.params) });
    } catch (error) {
      post({ type: 'reply', id: request.id, error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** The page of a webview: a strict Content-Security-Policy, its stylesheet, and its script under a fresh nonce. */
  private html(webview: vscode.Webview): string {
    const { bundle } = this.kind;
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', `${bundle.name}.js`));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', `${bundle.stylesheet}.css`));
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
}

interface ViewRequestMessage {
  readonly type: 'request';
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

function isRequest(message: { readonly type: string }): message is ViewRequestMessage {
  return message.type === 'request';
}
