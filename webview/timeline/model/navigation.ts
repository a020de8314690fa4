import type { Row } from './tree';

/**
 * Keyboard navigation of the span tree, as in the WAI-ARIA tree pattern: arrows move, Left and
 * Right collapse and expand (or move to the parent and the first child), Home and End, Page Up and
 * Page Down, Enter or Space to select.
 */

export type TreeAction =
  | { readonly kind: 'focus'; readonly index: number }
  | { readonly kind: 'collapse'; readonly spanId: string }
  | { readonly kind: 'expand'; readonly spanId: string }
  | { readonly kind: 'select'; readonly index: number }
  | { readonly kind: 'none' };

const NONE: TreeAction = { kind: 'none' };

/**
 * What `key` does with the row at `focus` focused (-1: none yet); `page` rows per Page Up or Down.
 * A move that stays put (Up on the first row) still focuses, so the view brings the row into sight.
 */
export function treeAction(key: string, rows: readonly Row[], focus: number, page: number): TreeAction {
  if (rows.length === 0) return NONE;
  const last = rows.length - 1;
  if (focus < 0 || focus > last) {
    return ['ArrowDown', 'ArrowUp', 'Home', 'End', 'PageDown', 'PageUp'].includes(key)
      ? { kind: 'focus', index: key === 'End' ? last : 0 }
      : NONE;
  }
  const row = rows[focus] as Row;
  const spanId = row.node.span.spanId;
  switch (key) {
    case 'ArrowDown':
      return { kind: 'focus', index: Math.min(last, focus + 1) };
    case 'ArrowUp':
      return { kind: 'focus', index: Math.max(0, focus - 1) };
    case 'Home':
      return { kind: 'focus', index: 0 };
    case 'End':
      return { kind: 'focus', index: last };
    case 'PageDown':
      return { kind: 'focus', index: Math.min(last, focus + page) };
    case 'PageUp':
      return { kind: 'focus', index: Math.max(0, focus - page) };
    case 'ArrowRight':
      if (row.node.children.length === 0) return NONE;
      return row.expanded ? { kind: 'focus', index: focus + 1 } : { kind: 'expand', spanId };
    case 'ArrowLeft': {
      if (row.expanded) return { kind: 'collapse', spanId };
      const parent = parentIndex(rows, focus);
      return parent < 0 ? NONE : { kind: 'focus', index: parent };
    }
    case 'Enter':
    case ' ':
      return { kind: 'select', index: focus };
    default:
      return NONE;
  }
}

/** The row of the focused row's parent: the nearest row above it that is one level shallower. */
export function parentIndex(rows: readonly Row[], index: number): number {
  const depth = rows[index]?.node.depth ?? 0;
  if (depth === 0) return -1;
  for (let candidate = index - 1; candidate >= 0; candidate--) {
    if ((rows[candidate] as Row).node.depth < depth) return candidate;
  }
  return -1;
}
