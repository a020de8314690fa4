import type { FlagKind, TraceSpan } from '../../../src/protocol/trace';

/**
 * A trace as a tree of spans, and the rows it shows once collapsed spans hide their descendants.
 * DOM-free: the webview only draws what this returns.
 */

export type Severity = 'warning' | 'error';

export interface SpanNode {
  readonly span: TraceSpan;
  readonly parent: SpanNode | null;
  /** In the order they started (ties broken by span id, so the order is stable). */
  readonly children: readonly SpanNode[];
  /** 0 for a root. */
  readonly depth: number;
  /** Where it is among its siblings (the roots, for a root), from 0. */
  readonly siblingIndex: number;
  /** The worst flag on this span's descendants (not on itself), for collapsed rows. */
  readonly descendantFlags: Severity | null;
}

export interface SpanTree {
  readonly roots: readonly SpanNode[];
  readonly byId: ReadonlyMap<string, SpanNode>;
  readonly size: number;
}

export interface Row {
  readonly node: SpanNode;
  readonly expanded: boolean;
}

interface MutableNode {
  span: TraceSpan;
  parent: MutableNode | null;
  children: MutableNode[];
  depth: number;
  siblingIndex: number;
  descendantFlags: Severity | null;
}

/**
 * Builds the tree. A span whose parent is not in the trace is a root; so is one caught in a parent
 * cycle (which a well-formed trace never has), so every span appears exactly once. A span id that
 * occurs twice keeps its last version.
 */
export function buildTree(spans: readonly TraceSpan[]): SpanTree {
  const byId = new Map<string, MutableNode>();
  for (const span of spans) {
    byId.set(span.spanId, { span, parent: null, children: [], depth: 0, siblingIndex: 0, descendantFlags: null });
  }
  const roots: MutableNode[] = [];
  for (const node of byId.values()) {
    const parentId = node.span.parentSpanId;
    const parent = parentId === null || parentId === node.span.spanId ? undefined : byId.get(parentId);
    if (parent) {
      node.parent = parent;
      parent.children.push(node);
    } else {
      roots.push(node);
    }
  }

  const visited = new Set<MutableNode>();
  const order: MutableNode[] = [];
  const walk = (root: MutableNode) => {
    root.parent = null;
    const stack: MutableNode[] = [root];
    root.depth = 0;
    while (stack.length > 0) {
      const node = stack.pop() as MutableNode;
      visited.add(node);
      order.push(node);
      node.children.sort(byStart);
      for (let index = node.children.length - 1; index >= 0; index--) {
        const child = node.children[index] as MutableNode;
        child.depth = node.depth + 1;
        child.siblingIndex = index;
        stack.push(child);
      }
    }
  };
  roots.sort(byStart);
  for (const root of roots) walk(root);
  if (visited.size < byId.size) {
    // Spans whose parents form a cycle: break each cycle at its earliest span.
    const stranded = [...byId.values()].filter((node) => !visited.has(node)).sort(byStart);
    for (const node of stranded) {
      if (visited.has(node)) continue;
      const parent = node.parent;
      if (parent) parent.children.splice(parent.children.indexOf(node), 1);
      roots.push(node);
      walk(node);
    }
    roots.sort(byStart);
  }
  roots.forEach((root, index) => (root.siblingIndex = index));

  // Children come after their parents in `order`, so walking it backwards sees every child first.
  for (let index = order.length - 1; index >= 0; index--) {
    const node = order[index] as MutableNode;
    const parent = node.parent;
    if (!parent) continue;
    parent.descendantFlags = worse(parent.descendantFlags, worse(node.descendantFlags, ownSeverity(node.span)));
  }
  return { roots, byId, size: byId.size };
}

/** The rows to show, depth first: a collapsed span's descendants are left out. */
export function visibleRows(tree: SpanTree, collapsed: ReadonlySet<string>): Row[] {
  const rows: Row[] = [];
  const stack: SpanNode[] = [];
  for (let index = tree.roots.length - 1; index >= 0; index--) stack.push(tree.roots[index] as SpanNode);
  while (stack.length > 0) {
    const node = stack.pop() as SpanNode;
    const expanded = node.children.length > 0 && !collapsed.has(node.span.spanId);
    rows.push({ node, expanded });
    if (!expanded) continue;
    for (let index = node.children.length - 1; index >= 0; index--) stack.push(node.children[index] as SpanNode);
  }
  return rows;
}

/** `collapsed` without the ancestors of `spanId`, so that its row shows. */
export function revealSpan(tree: SpanTree, collapsed: ReadonlySet<string>, spanId: string): Set<string> {
  const next = new Set(collapsed);
  for (let node = tree.byId.get(spanId)?.parent ?? null; node; node = node.parent) next.delete(node.span.spanId);
  return next;
}

/** Collapsed span ids that still name a span with children in the tree. */
export function pruneCollapsed(tree: SpanTree, collapsed: Iterable<string>): Set<string> {
  const kept = new Set<string>();
  for (const spanId of collapsed) if ((tree.byId.get(spanId)?.children.length ?? 0) > 0) kept.add(spanId);
  return kept;
}

/** The spans of `current` with `patch`'s versions of the same ids replacing them, and its new ones added. */
export function mergeSpans(current: readonly TraceSpan[], patch: readonly TraceSpan[]): TraceSpan[] {
  if (patch.length === 0) return [...current];
  const replaced = new Map(patch.map((span) => [span.spanId, span]));
  const merged = current.map((span) => {
    const next = replaced.get(span.spanId);
    if (!next) return span;
    replaced.delete(span.spanId);
    return next;
  });
  merged.push(...replaced.values());
  return merged;
}

/** Every flag in the trace: errors before warnings, each in the order of the spans. */
export function flagsOf(tree: SpanTree): { readonly spanId: string; readonly kind: FlagKind; readonly severity: Severity; readonly message: string }[] {
  const flags: { spanId: string; kind: FlagKind; severity: Severity; message: string }[] = [];
  for (const row of visibleRows(tree, new Set())) {
    for (const flag of row.node.span.flags) {
      flags.push({ spanId: row.node.span.spanId, kind: flag.kind, severity: flag.severity, message: flag.message });
    }
  }
  return flags.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}

export function ownSeverity(span: TraceSpan): Severity | null {
  let severity: Severity | null = null;
  for (const flag of span.flags) severity = worse(severity, flag.severity);
  return severity;
}

function worse(a: Severity | null, b: Severity | null): Severity | null {
  if (a === 'error' || b === 'error') return 'error';
  return a ?? b;
}

function byStart(a: MutableNode, b: MutableNode): number {
  return a.span.startTime - b.span.startTime || (a.span.spanId < b.span.spanId ? -1 : a.span.spanId > b.span.spanId ? 1 : 0);
}
