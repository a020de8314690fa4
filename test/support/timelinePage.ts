import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { outlineSpan, type HostToTimeline, type TimelineProtocol, type TimelineShown, type ViewToHost } from '../../src/protocol/webview';
import type { TraceSpan } from '../../src/runtime/trace/span';

/**
 * The built Trace timeline (dist/timeline.js, media/timeline.css) in a small page of its own, in
 * a real browser, without VS Code: a stub `acquireVsCodeApi` plays the host. When the view says
 * `ready` it posts the trace (span outlines), and it answers its `getSpan` requests with the whole span, as the
 * extension does; what the view posts back is kept in `window.keelHost`, the state it saves in
 * sessionStorage so that it survives a reload. Served through Playwright's routing: no server, no port.
 */

export const TIMELINE_ORIGIN = 'http://keel-timeline.test';

/** What the stub host records, read with `page.evaluate`. */
export interface StubHost {
  readonly posted: ViewToHost<TimelineProtocol>[];
  /** performance.now() when the trace was posted to the view. */
  sentAt: number;
  /** For each `shown` message: when it came, and when the frame after it was painted. */
  readonly shown: { readonly shown: TimelineShown; readonly at: number; readonly paintedAt: number }[];
}

const STUB = `
window.keelHost = { posted: [], sentAt: 0, shown: [] };
window.acquireVsCodeApi = () => ({
  postMessage(message) {
    keelHost.posted.push(message);
    if (message.type === 'ready') {
      fetch('/message.json').then((response) => response.json()).then((trace) => {
        keelHost.sentAt = performance.now();
        window.postMessage(trace, '*');
      });
    } else if (message.type === 'request' && message.method === 'getSpan') {
      fetch('/span/' + message.params.spanId).then((response) => response.json()).then((span) => {
        window.postMessage({ type: 'reply', id: message.id, result: span }, '*');
      });
    } else if (message.type === 'shown') {
      const at = performance.now();
      // The frame after the message is the one that shows what was drawn.
      requestAnimationFrame(() => setTimeout(() => keelHost.shown.push({ shown: message.shown, at, paintedAt: performance.now() }), 0));
    }
  },
  getState() {
    const saved = sessionStorage.getItem('keel-state');
    return saved === null ? undefined : JSON.parse(saved);
  },
  setState(state) {
    sessionStorage.setItem('keel-state', JSON.stringify(state));
  },
});
`;

/** A few theme colours, as a dark VS Code theme gives them, so screenshots read like the real thing. */
const THEME = `
:root {
  --vscode-font-family: system-ui, sans-serif; --vscode-font-size: 13px; --vscode-editor-font-family: monospace;
  --vscode-foreground: #cccccc; --vscode-editor-background: #1f1f1f; --vscode-descriptionForeground: #9d9d9d;
  --vscode-panel-border: #2b2b2b; --vscode-list-hoverBackground: #2a2d2e; --vscode-list-activeSelectionBackground: #04395e;
  --vscode-list-inactiveSelectionBackground: #37373d; --vscode-list-focusOutline: #0078d4; --vscode-focusBorder: #0078d4;
  --vscode-charts-blue: #3794ff; --vscode-charts-orange: #d18616; --vscode-charts-purple: #b180d7; --vscode-charts-red: #f14c4c;
  --vscode-charts-yellow: #cca700; --vscode-charts-green: #89d185; --vscode-charts-foreground: #cccccc;
  --vscode-errorForeground: #f85149; --vscode-editorWarning-foreground: #cca700; --vscode-textCodeBlock-background: #2b2b2b;
  --vscode-badge-background: #616161; --vscode-badge-foreground: #f8f8f8; --vscode-button-secondaryBackground: #313131;
  --vscode-button-secondaryForeground: #cccccc; --vscode-icon-foreground: #cccccc; --vscode-progressBar-background: #0078d4;
}`;

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<link rel="stylesheet" href="/media/timeline.css">
<style>${THEME}</style>
<title>Keel trace (test page)</title>
</head>
<body>
<div id="root"><p class="loading">Loading trace…</p></div>
<script src="/stub.js"></script>
<script src="/dist/timeline.js"></script>
</body>
</html>`;

/** The trace the stub host serves: whole spans, which it outlines as the extension does. */
export interface StubTrace {
  readonly runId: string;
  readonly title: string;
  readonly live: boolean;
  /** Whether the spans carry content; true when absent. */
  readonly contentRecorded?: boolean;
  readonly spans: readonly TraceSpan[];
}

/** Routes the test origin on `page` to the built timeline and `trace`; `openTimeline` then loads it. Call once per page. */
export async function serveTimeline(page: Page, repoRoot: string, trace: StubTrace): Promise<void> {
  const script = readFileSync(join(repoRoot, 'dist', 'timeline.js'), 'utf8');
  const style = readFileSync(join(repoRoot, 'media', 'timeline.css'), 'utf8');
  const message: HostToTimeline = {
    type: 'trace',
    runId: trace.runId,
    title: trace.title,
    live: trace.live,
    contentRecorded: trace.contentRecorded ?? true,
    spans: trace.spans.map(outlineSpan),
  };
  const body = JSON.stringify(message);
  const whole = new Map(trace.spans.map((span) => [span.spanId, JSON.stringify(span)]));
  await page.route(`${TIMELINE_ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path.startsWith('/span/')) {
      return route.fulfill({ status: 200, contentType: 'application/json', body: whole.get(path.slice('/span/'.length)) ?? 'null' });
    }
    const files: Record<string, { readonly body: string; readonly contentType: string }> = {
      '/': { body: PAGE, contentType: 'text/html; charset=utf-8' },
      '/stub.js': { body: STUB, contentType: 'text/javascript' },
      '/dist/timeline.js': { body: script, contentType: 'text/javascript' },
      '/media/timeline.css': { body: style, contentType: 'text/css' },
      '/message.json': { body, contentType: 'application/json' },
    };
    const file = files[path];
    return file ? route.fulfill({ status: 200, ...file }) : route.fulfill({ status: 404, body: `${path} is not served here` });
  });
}

/** Loads the page and waits until the view has drawn the trace and the frame after it was painted. */
export async function openTimeline(page: Page): Promise<void> {
  await page.goto(`${TIMELINE_ORIGIN}/`);
  await page.waitForFunction('window.keelHost.shown.length > 0');
}

export function stubHost(page: Page): Promise<StubHost> {
  return page.evaluate<StubHost>('window.keelHost');
}
