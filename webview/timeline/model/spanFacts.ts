import type { AttributeValue, TraceSpan } from '../../../src/protocol/trace';

/** What the timeline reads from spans: tokens, cost and time from their attributes, totals over a trace, attributes as text. */

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
