import type { AttributeValue, TraceSpan } from '../../../src/runtime/trace/span';

/** How the timeline writes durations, offsets, tokens and costs, and reads them from span attributes. */

export const INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const COST_USD = 'keel.cost.usd';

export interface Tokens {
  readonly input: number;
  readonly output: number;
}

export function spanTokens(span: TraceSpan): Tokens | null {
  const input = numberAttribute(span, INPUT_TOKENS);
  const output = numberAttribute(span, OUTPUT_TOKENS);
  if (input === null && output === null) return null;
  return { input: input ?? 0, output: output ?? 0 };
}

export function spanCost(span: TraceSpan): number | null {
  return numberAttribute(span, COST_USD);
}

/** Milliseconds the span took; an open span counts until `now`. */
export function spanDuration(span: TraceSpan, now: number): number {
  return Math.max(0, (span.endTime ?? Math.max(now, span.startTime)) - span.startTime);
}

export interface TraceTotals {
  readonly spans: number;
  readonly duration: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cost: number;
  readonly errors: number;
  readonly warnings: number;
}

/**
 * Sums over the trace. Tokens and cost count model calls only (`kind: 'model'`): agent spans may
 * carry their calls' totals again, which would count them twice.
 */
export function traceTotals(spans: readonly TraceSpan[], now: number): TraceTotals {
  let start = Infinity;
  let end = -Infinity;
  let inputTokens = 0;
  let outputTokens = 0;
  let cost = 0;
  let errors = 0;
  let warnings = 0;
  for (const span of spans) {
    start = Math.min(start, span.startTime);
    end = Math.max(end, span.endTime ?? Math.max(now, span.startTime));
    for (const flag of span.flags) {
      if (flag.severity === 'error') errors += 1;
      else warnings += 1;
    }
    if (span.kind !== 'model') continue;
    const tokens = spanTokens(span);
    inputTokens += tokens?.input ?? 0;
    outputTokens += tokens?.output ?? 0;
    cost += spanCost(span) ?? 0;
  }
  return { spans: spans.length, duration: spans.length === 0 ? 0 : end - start, inputTokens, outputTokens, cost, errors, warnings };
}

/** `0 ms`, `850 ms`, `12.3 s`, `4 min 5 s`: never `1000 ms` or `60.0 s`. */
export function formatDuration(ms: number): string {
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.round(ms / 100) < 600) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** A tick label, as precise as the step between ticks needs: `0`, `250 ms`, `1.5 s`, `2 min 30 s`. */
export function formatOffset(ms: number, step: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000 || step < 1000) {
    const digits = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
    return `${(ms / 1000).toFixed(digits)} s`;
  }
  const total = Math.round(ms / 1000);
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}

/** `980`, `12.3k`, `4.5M`: short enough for a column. */
export function formatTokens(count: number): string {
  if (count < 10_000) return count.toLocaleString('en-US');
  if (count < 1_000_000) return `${(count / 1000).toFixed(count < 100_000 ? 1 : 0)}k`;
  return `${(count / 1_000_000).toFixed(1)}M`;
}

/** Dollars with the digits that matter: `$0`, `<$0.0001`, `$0.0042`, `$1.23`. */
export function formatCost(usd: number): string {
  if (usd === 0) return '$0';
  if (usd < 0.0001) return '<$0.0001';
  if (usd < 1) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** An attribute as text: strings as they are, lists one item per line. */
export function formatAttribute(value: AttributeValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value.join('\n');
}

/** JSON held in a string is shown indented; anything else as it is. */
export function prettyText(text: string): string {
  const trimmed = text.trim();
  if (!(trimmed.startsWith('{') || trimmed.startsWith('['))) return text;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return text;
  }
}

function numberAttribute(span: TraceSpan, key: string): number | null {
  const value = span.attributes[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
