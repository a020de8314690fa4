/** What every benchmark shares: its shape, the clock, statistics and plain-text tables. */

export interface Benchmark {
  /** Short id, used to pick benchmarks on the command line. */
  readonly name: string;
  readonly title: string;
  /** Runs the benchmark and prints its report with `print`; progress notes go to `progress`. */
  run(print: (line: string) => void, progress: (note: string) => void): Promise<void>;
}

/** Nanoseconds from an arbitrary origin, monotonic. */
export function now(): bigint {
  return process.hrtime.bigint();
}

export function micros(nanoseconds: bigint | number): number {
  return Number(nanoseconds) / 1000;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A number of microseconds (or any magnitude) with digits that matter and thousands separators. */
export function formatNumber(value: number, fractionDigits = value < 10 ? 1 : 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
}

export function formatRatio(value: number): string {
  return value >= 10 ? `${value.toFixed(0)}x` : `${value.toFixed(2)}x`;
}

/** A table with a header row; columns after the first are right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const render = (row: readonly string[]): string =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [render(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(render)];
}

/** Median, min and max of milliseconds, as the start-up benchmarks print them. */
export function stats(values: readonly number[]): string[] {
  return [formatNumber(median(values), 1), formatNumber(Math.min(...values), 1), formatNumber(Math.max(...values), 1)];
}
