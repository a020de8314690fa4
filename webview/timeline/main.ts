import type { TraceSpan } from '../../src/protocol/trace';
import { MCP_SERVER_ATTRIBUTE } from '../../src/shared/spanAttributes';
import type { TimelineProtocol } from '../../src/protocol/webview';
import { spanDetails, type DetailSection, type Fact } from './model/details';
import { formatDuration, formatTokens, formatUsd } from '../../src/shared/format';
import { spanCost, spanDuration, spanTokens, traceTotals } from './model/spanFacts';
import { treeAction } from './model/navigation';
import { axisTicks, barOf, traceScale, type TimeScale } from './model/timeScale';
import { focusRow, openTrace, patchTrace, rowOf, saveState, selectSpan, toggle, type TimelineModel } from './model/timeline';
import { flagsOf, ownSeverity, type Row } from './model/tree';
import { pageSize, rowWindow, scrollToReveal, type Viewport } from './model/windowing';
import { clampedText } from '../shared/clamp';
import { element } from '../shared/dom';
import { Host } from '../shared/host';

/**
 * The Trace timeline: a virtualized waterfall of a run's spans and the details of the selected
 * one. All shaping happens in ./model; this file only draws it and turns input into model calls.
 */

/** Must match `--row-height`, which is set from here. */
const ROW_HEIGHT = 22;
const MAX_FLAGS_LISTED = 20;
const SAVE_DELAY_MS = 250;

const root = document.getElementById('root') as HTMLElement;
root.style.setProperty('--row-height', `${ROW_HEIGHT}px`);

const summary = element('header', 'summary');
const banner = element('p', 'banner error');
banner.hidden = true;
const flagList = element('nav', 'flag-list');
flagList.setAttribute('aria-label', 'Flags');
const axis = element('div', 'axis');
const columns = element(
  'div',
  'columns',
  element('div', 'name', 'Span'),
  element('div', 'num', 'Duration'),
  element('div', 'num', 'Tokens'),
  element('div', 'num', 'Cost'),
  axis,
);
columns.setAttribute('aria-hidden', 'true');
const rowsElement = element('div', 'rows');
rowsElement.setAttribute('role', 'none');
const spacer = element('div', 'spacer', rowsElement);
spacer.setAttribute('role', 'none');
const scroller = element('div', 'scroller', spacer);
scroller.setAttribute('role', 'tree');
scroller.setAttribute('aria-label', 'Spans');
scroller.tabIndex = 0;
const details = element('aside', 'details');
details.setAttribute('aria-label', 'Span details');
details.setAttribute('aria-live', 'polite');
const waterfall = element('section', 'waterfall', columns, scroller);
const body = element('div', 'body', waterfall, details);
root.replaceChildren(element('p', 'loading', 'Loading trace…'));

let model: TimelineModel | undefined;
let scale: TimeScale = { start: 0, end: 1 };
let viewportHeight = 0;
/** The rows drawn last, so a scroll within the same window draws nothing. */
let drawn = { first: -1, end: -1, version: -1 };
let version = 0;
let saveTimer: ReturnType<typeof setTimeout> | undefined;
/** Whole spans the host sent for the details pane (the trace itself has outlines), and those it had none of. */
const wholeSpans = new Map<string, TraceSpan | null>();
/** Whole spans asked for and not answered yet. */
const requested = new Set<string>();
/** Counts the traces shown: an answer asked for under an earlier one is not this trace's. */
let traceCount = 0;
/** Whether the trace carries content; when not, the details pane says how to turn it on. */
let contentRecorded = true;
/** Long content sections shown whole, by span and label; the others show their first lines. */
const expanded = new Set<string>();

const host = new Host<TimelineProtocol>((message) => {
  switch (message.type) {
    case 'trace': {
      // After a reload the view starts from the state it saved; otherwise from what it shows.
      const stored = model ? undefined : host.saved();
      const restoreScroll = stored?.runId === message.runId ? stored.scrollTop : undefined;
      model = openTrace(message, model ?? stored);
      contentRecorded = message.contentRecorded;
      traceCount += 1;
      wholeSpans.clear();
      requested.clear();
      banner.hidden = true;
      if (root.firstElementChild !== summary) root.replaceChildren(summary, banner, flagList, body);
      drawAll(true);
      if (restoreScroll !== undefined) scroller.scrollTop = restoreScroll;
      else if (model.selected) reveal(rowOf(model, model.selected));
      drawRows();
      saveSoon();
      report();
      break;
    }
    case 'patch': {
      if (!model) return;
      const selected = model.selected;
      for (const span of message.spans) wholeSpans.delete(span.spanId);
      model = patchTrace(model, message);
      drawAll(message.spans.some((span) => span.spanId === selected));
      report();
      break;
    }
    case 'error':
      banner.textContent = message.message;
      banner.hidden = false;
      if (!model) root.replaceChildren(banner);
      break;
  }
});

scroller.addEventListener('scroll', () => {
  drawRows();
  saveSoon();
});

scroller.addEventListener('keydown', (event) => {
  if (!model || event.altKey || event.ctrlKey || event.metaKey) return;
  const focus = rowOf(model, model.focused);
  const action = treeAction(event.key, model.rows, focus, pageSize({ height: viewportHeight, rowHeight: ROW_HEIGHT }));
  if (action.kind === 'none') {
    // Keys the tree handles never scroll the container natively, even when there is nothing to do.
    if (['ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'Home', 'End', ' '].includes(event.key)) event.preventDefault();
    return;
  }
  event.preventDefault();
  switch (action.kind) {
    case 'focus':
      model = focusRow(model, action.index);
      break;
    case 'collapse':
    case 'expand':
      model = toggle(model, action.spanId, action.kind === 'expand');
      break;
    case 'select':
      select(model.rows[action.index]?.node.span.spanId ?? null);
      return;
  }
  changed();
  reveal(rowOf(model, model.focused));
  drawRows();
});

rowsElement.addEventListener('click', (event) => {
  const target = event.target as HTMLElement;
  const row = target.closest<HTMLElement>('.row');
  if (!model || !row) return;
  const spanId = row.dataset['spanId'] ?? '';
  if (target.closest('.twisty')) {
    model = toggle(model, spanId);
    model = focusRow(model, rowOf(model, spanId));
    changed();
    drawRows();
  } else {
    select(spanId);
  }
  scroller.focus({ preventScroll: true });
});

rowsElement.addEventListener('dblclick', (event) => {
  const row = (event.target as HTMLElement).closest<HTMLElement>('.row');
  if (!model || !row || (event.target as HTMLElement).closest('.twisty')) return;
  model = toggle(model, row.dataset['spanId'] ?? '');
  changed();
  drawRows();
});

flagList.addEventListener('click', (event) => {
  const button = (event.target as HTMLElement).closest<HTMLElement>('button[data-span-id]');
  if (!button || !model) return;
  select(button.dataset['spanId'] ?? null);
  scroller.focus({ preventScroll: true });
});

new ResizeObserver(() => {
  viewportHeight = scroller.clientHeight;
  changed();
  drawRows();
}).observe(scroller);
// As many ticks as the axis has room for: it grows and shrinks with the panel.
new ResizeObserver(() => drawAxis()).observe(axis);

// While a run goes, its open spans grow: redraw what shows once a second.
setInterval(() => {
  if (!model?.live) return;
  const selected = model.selected === null ? undefined : model.tree.byId.get(model.selected);
  drawTimes(selected?.span.endTime === null);
}, 1000);

host.ready();

function select(spanId: string | null): void {
  if (!model) return;
  model = selectSpan(model, spanId);
  changed();
  reveal(rowOf(model, model.focused));
  drawRows();
  drawDetails();
  saveSoon();
  report();
}

/** The rows must be drawn again even if the same ones show. */
function changed(): void {
  version += 1;
  saveSoon();
}

function reveal(index: number): void {
  if (index < 0) return;
  const target = scrollToReveal(viewport(), index);
  if (target !== scroller.scrollTop) scroller.scrollTop = target;
}

function viewport(): Viewport {
  return { scrollTop: scroller.scrollTop, height: viewportHeight, rowHeight: ROW_HEIGHT, rowCount: model?.rows.length ?? 0 };
}

/** Draws everything; the details only with `withDetails`, so reading them is not disturbed needlessly. */
function drawAll(withDetails: boolean): void {
  if (!model) return;
  scroller.setAttribute('aria-label', `Spans of ${model.title}`);
  drawFlagList();
  drawTimes(withDetails, true);
}

/**
 * What depends on the time: the totals, the scale, the rows' bars and durations. With `measure`,
 * the rows' viewport is measured once what sits above it is drawn (the ResizeObserver follows later changes).
 */
function drawTimes(withDetails: boolean, measure = false): void {
  if (!model) return;
  const now = Date.now();
  scale = traceScale(model.spans, now);
  drawSummary(now);
  drawAxis();
  if (measure) viewportHeight = scroller.clientHeight;
  changed();
  drawRows();
  if (withDetails) drawDetails();
}

function drawSummary(now: number): void {
  if (!model) return;
  const totals = traceTotals(model.spans, now);
  const facts: [string, string][] = [
    ['Duration', formatDuration(totals.duration)],
    ['Spans', totals.spans.toLocaleString('en-US')],
    ['Tokens', `${formatTokens(totals.inputTokens)} in · ${formatTokens(totals.outputTokens)} out`],
    ['Cost', formatUsd(totals.cost)],
    ['Flags', totals.errors + totals.warnings === 0 ? 'none' : `${totals.errors} errors · ${totals.warnings} warnings`],
  ];
  const title = element('h1', undefined, model.title);
  if (model.live) title.append(element('span', 'badge live', 'live'));
  const list = element('dl', 'totals');
  for (const [label, value] of facts) list.append(element('div', undefined, element('dt', undefined, label), element('dd', undefined, value)));
  summary.replaceChildren(title, list);
}

function drawFlagList(): void {
  if (!model) return;
  const flags = flagsOf(model.tree);
  flagList.hidden = flags.length === 0;
  if (flags.length === 0) return;
  const items = flags.slice(0, MAX_FLAGS_LISTED).map((flag) => {
    const button = element('button', `flag ${flag.severity}`, element('span', 'flag-kind', flag.kind), ` ${flag.message}`);
    button.dataset['spanId'] = flag.spanId;
    button.title = `Show the span (${model?.tree.byId.get(flag.spanId)?.span.name ?? flag.spanId})`;
    return element('li', undefined, button);
  });
  const list = element('ul', undefined, ...items);
  if (flags.length > MAX_FLAGS_LISTED) list.append(element('li', 'more', `and ${flags.length - MAX_FLAGS_LISTED} more`));
  flagList.replaceChildren(list);
}

function drawAxis(): void {
  const marks = axisTicks(scale, axis.clientWidth).map((tick) => {
    const mark = element('span', 'tick', tick.label);
    mark.style.left = `${tick.position}%`;
    return mark;
  });
  axis.replaceChildren(...marks);
}

function drawRows(): void {
  if (!model) return;
  const range = rowWindow(viewport());
  spacer.style.height = `${range.totalHeight}px`;
  if (range.first === drawn.first && range.end === drawn.end && version === drawn.version) return;
  drawn = { first: range.first, end: range.end, version };
  rowsElement.style.transform = `translateY(${range.offset}px)`;
  const now = Date.now();
  const fragment = document.createDocumentFragment();
  for (let index = range.first; index < range.end; index++) {
    fragment.append(drawRow(model, model.rows[index] as Row, index, now));
  }
  rowsElement.replaceChildren(fragment);
  const focused = model.focused === null ? null : document.getElementById(rowId(model.focused));
  if (focused) scroller.setAttribute('aria-activedescendant', focused.id);
  else scroller.removeAttribute('aria-activedescendant');
}

function drawRow(current: TimelineModel, row: Row, index: number, now: number): HTMLElement {
  const { span, depth, children, parent } = row.node;
  const severity = ownSeverity(span);
  const classes = ['row', `kind-${span.kind}`, `status-${span.endTime === null ? 'open' : span.status}`];
  if (severity) classes.push(`flag-${severity}`);
  if (span.spanId === current.selected) classes.push('selected');
  if (span.spanId === current.focused) classes.push('focused');
  const item = element('div', classes.join(' '));
  item.id = rowId(span.spanId);
  item.dataset['spanId'] = span.spanId;
  item.dataset['index'] = String(index);
  item.setAttribute('role', 'treeitem');
  item.setAttribute('aria-level', String(depth + 1));
  const siblings = parent ? parent.children : current.tree.roots;
  item.setAttribute('aria-setsize', String(siblings.length));
  item.setAttribute('aria-posinset', String(row.node.siblingIndex + 1));
  item.setAttribute('aria-selected', String(span.spanId === current.selected));
  if (children.length > 0) item.setAttribute('aria-expanded', String(row.expanded));

  const name = element('div', 'name');
  name.style.setProperty('--depth', String(depth));
  name.append(element('span', children.length > 0 ? `twisty ${row.expanded ? 'expanded' : 'collapsed'}` : 'twisty leaf'));
  name.append(element('span', 'label', span.name));
  const server = span.attributes[MCP_SERVER_ATTRIBUTE];
  if (typeof server === 'string') name.append(element('span', 'server', `MCP ${server}`));
  const hiddenFlags = row.expanded ? null : row.node.descendantFlags;
  if (severity || hiddenFlags) {
    const mark = element('span', `flag-mark ${severity ?? hiddenFlags ?? ''}${severity ? '' : ' inside'}`, '⚑');
    mark.title = severity ? span.flags.map((flag) => `${flag.kind}: ${flag.message}`).join('\n') : 'A span inside is flagged';
    name.append(mark);
  }
  name.title = typeof server === 'string' ? `${span.name}, a tool of the MCP server ${server}` : span.name;

  const tokens = spanTokens(span);
  const cost = spanCost(span);
  const bar = barOf(span, scale, now);
  const barElement = element('div', 'bar');
  barElement.style.left = `${bar.left}%`;
  barElement.style.width = `${bar.width}%`;
  item.append(
    name,
    element('div', 'num', formatDuration(spanDuration(span, now))),
    element('div', 'num', tokens ? formatTokens(tokens.input + tokens.output) : ''),
    element('div', 'num', cost === null ? '' : formatUsd(cost)),
    element('div', 'track', barElement),
  );
  return item;
}

function drawDetails(): void {
  if (!model) return;
  const outline = model.selected === null ? undefined : model.tree.byId.get(model.selected)?.span;
  if (!outline) {
    details.replaceChildren(element('p', 'hint', 'Select a span (click it, or move with the arrow keys and press Enter) to see its details.'));
    return;
  }
  // The outline's facts show at once; its content once the host has sent the whole span.
  const whole = wholeSpans.get(outline.spanId);
  if (whole === undefined) requestWholeSpan(model.runId, outline.spanId);
  const shown = spanDetails(whole ?? outline, scale.start, Date.now(), contentRecorded);
  const parts: HTMLElement[] = [
    element('h2', undefined, shown.title, element('span', `badge status-${shown.open ? 'open' : shown.status}`, shown.open ? 'running' : shown.status)),
  ];
  if (whole === undefined) parts.push(element('p', 'hint', 'Loading its content…'));
  if (shown.flags.length > 0) {
    parts.push(
      element(
        'ul',
        'flags',
        ...shown.flags.map((flag) => element('li', `flag ${flag.severity}`, element('span', 'flag-kind', flag.kind), ` ${flag.message}`)),
      ),
    );
  }
  parts.push(facts('facts', shown.facts));
  if (shown.note !== null && whole !== undefined) parts.push(element('p', 'hint note', shown.note));
  for (const section of shown.sections) parts.push(contentSection(shown.spanId, section));
  if (shown.attributes.length > 0) parts.push(element('h3', undefined, 'Attributes'), facts('attributes', shown.attributes));
  if (shown.events.length > 0) {
    parts.push(
      element('h3', undefined, 'Events'),
      element(
        'ol',
        'events',
        ...shown.events.map((event) =>
          element('li', undefined, element('span', 'event-at', event.at), ` ${event.name}`, ...(event.attributes.length > 0 ? [facts('attributes', event.attributes)] : [])),
        ),
      ),
    );
  }
  details.replaceChildren(...parts);
}

/** A content section: its label and a Copy button, then the text, cut to its first lines with a button for the rest when long. */
function contentSection(spanId: string, section: DetailSection): HTMLElement {
  const copy = element('button', { className: 'copy', title: `Copy ${section.label}`, ariaLabel: `Copy ${section.label}` }, 'Copy');
  copy.addEventListener('click', () => {
    void navigator.clipboard.writeText(section.text).then(
      () => (copy.textContent = 'Copied'),
      () => (copy.textContent = 'Copy failed'),
    );
  });
  return element('section', section.tone, element('h3', undefined, section.label, copy), ...clampedText(`${spanId}/${section.label}`, section.text, expanded, drawDetails));
}

function requestWholeSpan(runId: string, spanId: string): void {
  if (requested.has(spanId)) return;
  requested.add(spanId);
  const asked = traceCount;
  const answered = (span: TraceSpan | null) => {
    if (asked !== traceCount) return;
    requested.delete(spanId);
    wholeSpans.set(spanId, span);
    if (spanId === model?.selected) drawDetails();
  };
  host.request('getSpan', { runId, spanId }).then(answered, () => answered(null));
}

function facts(className: string, list: readonly Fact[]): HTMLElement {
  const dl = element('dl', className);
  for (const fact of list) dl.append(element('dt', undefined, fact.label), element('dd', undefined, fact.value));
  return dl;
}

function saveSoon(): void {
  if (saveTimer !== undefined) return;
  saveTimer = setTimeout(() => {
    saveTimer = undefined;
    if (model) host.save(saveState(model, scroller.scrollTop));
  }, SAVE_DELAY_MS);
}

function report(): void {
  if (!model) return;
  host.post({
    type: 'shown',
    shown: {
      runId: model.runId,
      spanCount: model.tree.size,
      rowCount: model.rows.length,
      rowsInDom: rowsElement.childElementCount,
      selectedSpanId: model.selected,
    },
  });
}

function rowId(spanId: string): string {
  return `span-${spanId}`;
}
