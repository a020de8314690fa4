import type { RunEvent } from './events';
import type { Run, Step } from './records';
import type { AttributeValue, TraceSpan } from './trace';

/** Messages between the extension host and the Run webview, one union per direction. */

export type HostToRunView =
  | { readonly type: 'run'; readonly run: Run; readonly steps: readonly Step[] }
  | { readonly type: 'event'; readonly event: RunEvent }
  | { readonly type: 'error'; readonly message: string };

export type RunViewToHost = { readonly type: 'ready' } | { readonly type: 'openAgentFile'; readonly file: string };

/** What the Run webview keeps across reloads (vscode.getState / setState and the panel serializer). */
export interface RunViewState {
  readonly runId: string;
}

/**
 * Messages between the extension host and the Trace timeline webview, one union per direction.
 * `trace` replaces what the view shows; `patch` brings the spans that are new or changed since
 * (a live run), and only ever follows a `trace` of the same run. Both carry span outlines (see
 * OUTLINE_ATTRIBUTES): a span's content (messages, arguments, results) can be large and is only
 * needed for the one selected, so the view asks for it with `getSpan` and the host answers `span`.
 */
export type HostToTimeline =
  | {
      readonly type: 'trace';
      readonly runId: string;
      readonly title: string;
      /** The run is going: open spans grow until `now`, and patches follow. */
      readonly live: boolean;
      readonly spans: readonly TraceSpan[];
    }
  | { readonly type: 'patch'; readonly runId: string; readonly live: boolean; readonly spans: readonly TraceSpan[] }
  /** The answer to `getSpan` with the same `requestId`: the whole span, or null if the trace has none by that id. */
  | { readonly type: 'span'; readonly requestId: number; readonly span: TraceSpan | null }
  | { readonly type: 'error'; readonly message: string };

export type TimelineToHost =
  | { readonly type: 'ready' }
  | { readonly type: 'getSpan'; readonly requestId: number; readonly runId: string; readonly spanId: string }
  /** After the view drew a trace or patch, or the selection changed: what it shows. */
  | { readonly type: 'shown'; readonly shown: TimelineShown };

/**
 * The only attributes a span outline keeps: what the waterfall shows for every row. Outlines also
 * have no events; everything else about a span is in it as it is.
 */
export const OUTLINE_ATTRIBUTES: readonly string[] = ['gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'keel.cost.usd'];

/** A span as the waterfall needs it (OUTLINE_ATTRIBUTES, no events). */
export function outlineSpan(span: TraceSpan): TraceSpan {
  const attributes: Record<string, AttributeValue> = {};
  for (const key of OUTLINE_ATTRIBUTES) {
    const value = span.attributes[key];
    if (value !== undefined) attributes[key] = value;
  }
  return { ...span, attributes, events: [] };
}

export interface TimelineShown {
  readonly runId: string;
  readonly spanCount: number;
  /** Rows of the tree once collapsed spans hide theirs. */
  readonly rowCount: number;
  /** Rows actually in the DOM (the view is virtualized). */
  readonly rowsInDom: number;
  readonly selectedSpanId: string | null;
}

/** What the Trace timeline keeps across reloads (vscode.getState / setState and the panel serializer). */
export interface TimelineState {
  readonly runId: string;
  readonly selectedSpanId: string | null;
  readonly focusedSpanId: string | null;
  readonly collapsed: readonly string[];
  readonly scrollTop: number;
}
