import type { HostToTimeline, TimelineState } from '../../../src/protocol/webview';
import type { TraceSpan } from '../../../src/protocol/trace';
import { buildTree, mergeSpans, pruneCollapsed, revealSpan, visibleRows, type Row, type SpanTree } from './tree';

/**
 * The timeline's whole state and how messages and a person's actions change it. Every function
 * returns a new model; the DOM code keeps the latest and draws it.
 */

export interface TimelineModel {
  readonly runId: string;
  readonly title: string;
  readonly live: boolean;
  readonly spans: readonly TraceSpan[];
  readonly tree: SpanTree;
  readonly collapsed: ReadonlySet<string>;
  /** The rows on show, and each one's index by span id. */
  readonly rows: readonly Row[];
  readonly rowIndex: ReadonlyMap<string, number>;
  /** The keyboard's row (aria-activedescendant). */
  readonly focused: string | null;
  /** The span whose details show. */
  readonly selected: string | null;
}

type TraceMessage = Extract<HostToTimeline, { type: 'trace' }>;
type PatchMessage = Extract<HostToTimeline, { type: 'patch' }>;

/**
 * A trace arrives. With `previous` of the same run (a live run re-sent, or the state saved before
 * a reload) the collapsed spans, focus and selection carry over where their spans still exist.
 */
export function openTrace(message: TraceMessage, previous?: TimelineModel | TimelineState): TimelineModel {
  const tree = buildTree(message.spans);
  const kept = previous?.runId === message.runId ? carried(previous) : { collapsed: [], focused: null, selected: null };
  return withRows({
    runId: message.runId,
    title: message.title,
    live: message.live,
    spans: message.spans,
    tree,
    collapsed: pruneCollapsed(tree, kept.collapsed),
    focused: existing(tree, kept.focused),
    selected: existing(tree, kept.selected),
  });
}

/** New and changed spans of the run on show; a patch for another run changes nothing. */
export function patchTrace(model: TimelineModel, message: PatchMessage): TimelineModel {
  if (message.runId !== model.runId) return model;
  const spans = mergeSpans(model.spans, message.spans);
  const tree = buildTree(spans);
  return withRows({ ...model, live: message.live, spans, tree, collapsed: pruneCollapsed(tree, model.collapsed) });
}

/** Collapses or expands a span (`expand` omitted: whichever it is not). */
export function toggle(model: TimelineModel, spanId: string, expand?: boolean): TimelineModel {
  const node = model.tree.byId.get(spanId);
  if (!node || node.children.length === 0) return model;
  const isCollapsed = model.collapsed.has(spanId);
  const wantCollapsed = expand === undefined ? !isCollapsed : !expand;
  if (wantCollapsed === isCollapsed) return model;
  const collapsed = new Set(model.collapsed);
  if (wantCollapsed) collapsed.add(spanId);
  else collapsed.delete(spanId);
  // A focus or selection inside what was collapsed moves to the collapsed span.
  const inside = (id: string | null) => id !== null && isDescendant(model.tree, id, spanId);
  return withRows({
    ...model,
    collapsed,
    focused: inside(model.focused) ? spanId : model.focused,
  });
}

export function focusRow(model: TimelineModel, index: number): TimelineModel {
  const row = model.rows[index];
  return row ? { ...model, focused: row.node.span.spanId } : model;
}

/** Selects a span (and focuses it), expanding its ancestors so its row shows. */
export function selectSpan(model: TimelineModel, spanId: string | null): TimelineModel {
  if (spanId === null) return { ...model, selected: null };
  if (!model.tree.byId.has(spanId)) return model;
  const revealed = revealSpan(model.tree, model.collapsed, spanId);
  const next = revealed.size === model.collapsed.size ? model : withRows({ ...model, collapsed: revealed });
  return { ...next, selected: spanId, focused: spanId };
}

/** The row index of a span, or -1 when it is hidden or absent. */
export function rowOf(model: TimelineModel, spanId: string | null): number {
  return spanId === null ? -1 : (model.rowIndex.get(spanId) ?? -1);
}

export function saveState(model: TimelineModel, scrollTop: number): TimelineState {
  return {
    runId: model.runId,
    selectedSpanId: model.selected,
    focusedSpanId: model.focused,
    collapsed: [...model.collapsed],
    scrollTop,
  };
}

function withRows(model: Omit<TimelineModel, 'rows' | 'rowIndex'>): TimelineModel {
  const rows = visibleRows(model.tree, model.collapsed);
  const rowIndex = new Map<string, number>();
  rows.forEach((row, index) => rowIndex.set(row.node.span.spanId, index));
  const focused = model.focused !== null && rowIndex.has(model.focused) ? model.focused : (rows[0]?.node.span.spanId ?? null);
  return { ...model, rows, rowIndex, focused };
}

function carried(previous: TimelineModel | TimelineState): {
  readonly collapsed: Iterable<string>;
  readonly focused: string | null;
  readonly selected: string | null;
} {
  return 'tree' in previous
    ? { collapsed: previous.collapsed, focused: previous.focused, selected: previous.selected }
    : { collapsed: previous.collapsed, focused: previous.focusedSpanId, selected: previous.selectedSpanId };
}

function existing(tree: SpanTree, spanId: string | null): string | null {
  return spanId !== null && tree.byId.has(spanId) ? spanId : null;
}

function isDescendant(tree: SpanTree, spanId: string, ancestorId: string): boolean {
  for (let node = tree.byId.get(spanId)?.parent ?? null; node; node = node.parent) {
    if (node.span.spanId === ancestorId) return true;
  }
  return false;
}
