/**
 * Virtualized rows: with a fixed row height, which rows a scroll position shows, and where to
 * scroll so a row shows. Only those rows are in the DOM; a spacer gives the scroll range.
 */

export interface Viewport {
  readonly scrollTop: number;
  /** The scroll container's visible height in pixels. */
  readonly height: number;
  readonly rowHeight: number;
  readonly rowCount: number;
}

export interface RowWindow {
  /** Index of the first row to draw. */
  readonly first: number;
  /** One past the last row to draw. */
  readonly end: number;
  /** Pixels from the top of the spacer to the first drawn row. */
  readonly offset: number;
  /** The spacer's height: every row's. */
  readonly totalHeight: number;
}

/**
 * The rows in view plus `overscan` rows either side, so a small scroll never shows a gap. A
 * scroll position past the end (the list shrank) shows the last rows.
 */
export function rowWindow(viewport: Viewport, overscan = 8): RowWindow {
  const { rowHeight, rowCount } = viewport;
  const totalHeight = rowCount * rowHeight;
  if (rowCount === 0 || rowHeight <= 0) return { first: 0, end: 0, offset: 0, totalHeight: Math.max(0, totalHeight) };
  const height = Math.max(0, viewport.height);
  const scrollTop = clamp(viewport.scrollTop, 0, Math.max(0, totalHeight - height));
  const firstVisible = Math.floor(scrollTop / rowHeight);
  const lastVisible = Math.ceil((scrollTop + height) / rowHeight);
  const first = clamp(firstVisible - overscan, 0, rowCount - 1);
  const end = clamp(lastVisible + overscan, first + 1, rowCount);
  return { first, end, offset: first * rowHeight, totalHeight };
}

/** Whole rows that fit in the viewport, at least one: how far Page Up and Page Down move. */
export function pageSize(viewport: Pick<Viewport, 'height' | 'rowHeight'>): number {
  return Math.max(1, Math.floor(viewport.height / viewport.rowHeight));
}

/** The scroll position that shows row `index` entirely, moving as little as possible. */
export function scrollToReveal(viewport: Viewport, index: number): number {
  const { scrollTop, height, rowHeight } = viewport;
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + height) return Math.max(0, bottom - height);
  return scrollTop;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
