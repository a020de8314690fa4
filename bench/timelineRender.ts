/**
 * Trace timeline rendering: the built webview (dist/timeline.js) in headless Chromium, given
 * synthetic traces of 1,000 and 10,000 spans. Measures the time to first render (from the trace
 * being posted to the view until the frame that shows it is painted) and the time to render after
 * a scroll to another part of the trace. Goal: first render under 200 ms at 10,000 spans.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { outlineSpan } from '../src/protocol/webview';
import { openTimeline, serveTimeline, stubHost } from '../test/support/timelinePage';
import { syntheticTrace } from '../test/support/syntheticTrace';
import { Cleanup, launchBrowser } from '../test/vscode/codeServer';
import { type Benchmark, formatNumber, median, table } from './harness';

const SIZES = [1000, 10_000];
const LOADS = 9;
const SCROLLS = 20;
const ROW_HEIGHT = 22;
const GOAL_MS = 200;
const REPO_ROOT = resolve(__dirname, '..', '..');

interface Scroll {
  /** Scroll handler and layout, measured synchronously in the page. */
  readonly script: number;
  /** Until the frame showing the new rows is painted. */
  readonly painted: number;
}

/**
 * In the page: scrolls the rows' container to `top` and measures until the row `index` is drawn.
 * `script`: the view's scroll handler, run at once by dispatching the event, plus style and layout.
 * `painted`: a second jump, handled as the browser does it, until the frame after it is painted.
 */
function scrollIn(page: Page, top: number, index: number, back: number): Promise<Scroll> {
  return page.evaluate<Scroll>(`(async () => {
    const scroller = document.querySelector('.scroller');
    const nextFrame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    await nextFrame();
    let started = performance.now();
    scroller.scrollTop = ${top};
    scroller.dispatchEvent(new Event('scroll'));
    if (!document.querySelector('[data-index="${index}"]')) throw new Error('row ${index} was not drawn');
    document.body.getBoundingClientRect();
    const script = performance.now() - started;
    await nextFrame();
    started = performance.now();
    scroller.scrollTop = ${back};
    while (!document.querySelector('[data-index="${Math.floor(back / ROW_HEIGHT)}"]')) {
      await new Promise((done) => requestAnimationFrame(done));
    }
    await new Promise((done) => setTimeout(done, 0));
    return { script, painted: performance.now() - started };
  })()`);
}

function stats(values: readonly number[]): string[] {
  return [formatNumber(median(values), 1), formatNumber(Math.min(...values), 1), formatNumber(Math.max(...values), 1)];
}

export const benchmark: Benchmark = {
  name: 'timelineRender',
  title: 'Trace timeline: first render and render after a scroll, in headless Chromium',
  async run(print, progress) {
    if (!existsSync(resolve(REPO_ROOT, 'dist', 'timeline.js'))) throw new Error('dist/timeline.js is missing: run `npm run build` first.');
    const cleanup = new Cleanup();
    try {
      const { page } = await launchBrowser(cleanup);
      await page.setViewportSize({ width: 1400, height: 900 });
      const rows: string[][] = [];
      let firstAtLargest = Infinity;
      for (const size of SIZES) {
        const spans = syntheticTrace(size);
        const trace = { runId: 'run_bench', title: `bench · ${size} spans`, live: false, spans };
        const tab = await page.context().newPage();
        try {
          await serveTimeline(tab, REPO_ROOT, trace);
          const script: number[] = [];
          const painted: number[] = [];
          for (let load = 0; load < LOADS; load++) {
            progress(`${size} spans: load ${load + 1}/${LOADS}`);
            await tab.evaluate('sessionStorage.clear()').catch(() => undefined);
            await openTimeline(tab);
            const host = await stubHost(tab);
            const shown = host.shown[0];
            if (!shown || shown.shown.spanCount !== size) throw new Error(`the view did not draw the ${size} spans`);
            script.push(shown.at - host.sentAt);
            painted.push(shown.paintedAt - host.sentAt);
          }
          progress(`${size} spans: ${SCROLLS} scrolls`);
          const scrolls: Scroll[] = [];
          for (let jump = 0; jump < SCROLLS; jump++) {
            const index = Math.floor(((jump + 1) / (SCROLLS + 1)) * (size - 50));
            const back = Math.floor(((SCROLLS - jump) / (SCROLLS + 1)) * (size - 50)) * ROW_HEIGHT;
            scrolls.push(await scrollIn(tab, index * ROW_HEIGHT, index, back));
          }
          const json = JSON.stringify(spans.map(outlineSpan)).length;
          rows.push([`${size.toLocaleString('en-US')} spans, first render: script`, ...stats(script)]);
          rows.push([`${size.toLocaleString('en-US')} spans, first render: painted`, ...stats(painted)]);
          rows.push([`${size.toLocaleString('en-US')} spans, scroll: script + layout`, ...stats(scrolls.map((scroll) => scroll.script))]);
          rows.push([`${size.toLocaleString('en-US')} spans, scroll: painted`, ...stats(scrolls.map((scroll) => scroll.painted))]);
          rows.push([`  (trace message: ${formatNumber(json / 1e6, 1)} MB of span outlines as JSON)`, '', '', '']);
          if (size === SIZES[SIZES.length - 1]) firstAtLargest = median(painted);
        } finally {
          await tab.close();
        }
      }
      print(`${LOADS} page loads per size (first render), ${SCROLLS} jumps (scroll); viewport 1400x900, rows of ${ROW_HEIGHT} px`);
      print('first render: from posting the trace to the view until its frame is painted (script: until the view has drawn it)');
      print('scroll: a jump elsewhere in the trace until its rows are drawn (script + layout) or painted');
      for (const line of table(['measure', 'median ms', 'min ms', 'max ms'], rows)) print(line);
      const largest = SIZES[SIZES.length - 1] ?? 0;
      print(
        `goal: first render under ${GOAL_MS} ms at ${largest.toLocaleString('en-US')} spans: ` +
          `${firstAtLargest < GOAL_MS ? 'met' : 'NOT met'} (median ${formatNumber(firstAtLargest, 1)} ms)`,
      );
    } finally {
      await cleanup.run();
    }
  },
};
