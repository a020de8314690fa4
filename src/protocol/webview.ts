import type { RunEvent } from './events';
import type { RequestMap } from './jsonRpc';
import type { Run, Step } from './records';
import type { RunComparison } from '../shared/runComparison';
import type { AttributeValue, TraceSpan } from './trace';

/**
 * What a webview and the extension host say to each other. Each kind of view has a protocol: what
 * the host posts, what the view posts, what it keeps across reloads, and what it asks the host.
 * On top of those, every view says `ready` when it has (re)loaded and has nothing, and asks with
 * `request` messages that the host answers with a `reply` of the same id.
 */
export interface ViewProtocol {
  readonly toView: { readonly type: string };
  readonly fromView: { readonly type: string };
  /** What the view keeps (vscode.getState / setState); the panel serializer restores the run it names. */
  readonly state: PanelState;
  readonly requests: RequestMap<object>;
}

export interface PanelState {
  readonly runId: string;
}

/** A question from a view; the host answers with a ViewReply of the same id. */
export type ViewRequest<R> = { [M in keyof R & string]: { readonly type: 'request'; readonly id: number; readonly method: M; readonly params: R[M] extends { params: infer P } ? P : never } }[keyof R & string];

/** The host's answer to a ViewRequest: its result, or why there is none. */
export type ViewReply = { readonly type: 'reply'; readonly id: number; readonly result: unknown } | { readonly type: 'reply'; readonly id: number; readonly error: string };

export type HostToView<P extends ViewProtocol> = P['toView'] | ViewReply;
export type ViewToHost<P extends ViewProtocol> = { readonly type: 'ready' } | P['fromView'] | ViewRequest<P['requests']>;

/** The Run view: a run's steps, live. */
export interface RunViewProtocol extends ViewProtocol {
  readonly toView:
    | { readonly type: 'run'; readonly run: Run; readonly steps: readonly Step[] }
    | { readonly type: 'event'; readonly event: RunEvent }
    /** Open this step and scroll to it. */
    | { readonly type: 'focusStep'; readonly seq: number }
    | { readonly type: 'error'; readonly message: string };
  readonly fromView: { readonly type: 'openAgentFile'; readonly file: string };
  readonly state: PanelState;
  readonly requests: Record<never, never>;
}

/**
 * The run comparison: two runs side by side, step by step, the first difference marked. Its one
 * panel shows one pair at a time; the pair is kept as `comparisonKey` says, in `runId`.
 */
export interface ComparisonProtocol extends ViewProtocol {
  readonly toView: { readonly type: 'comparison'; readonly comparison: RunComparison } | { readonly type: 'error'; readonly message: string };
  /** Open a run's Run view at one of its steps. */
  readonly fromView: { readonly type: 'openStep'; readonly runId: string; readonly seq: number };
  readonly state: PanelState;
  readonly requests: Record<never, never>;
}

/** The two runs of a comparison as one key (run ids have no spaces), and back. */
export function comparisonKey(runA: string, runB: string): string {
  return `${runA} ${runB}`;
}

export function comparedRunIds(key: string): { readonly runA: string; readonly runB: string } | null {
  const [runA, runB, ...rest] = key.split(' ');
  return runA && runB && rest.length === 0 ? { runA, runB } : null;
}

/**
 * The Trace timeline. `trace` replaces what the view shows; `patch` brings the spans that are new
 * or changed since (a live run), and only ever follows a `trace` of the same run. Both carry span
 * outlines (see OUTLINE_ATTRIBUTES): a span's content (messages, arguments, results) can be large
 * and is only needed for the one selected, so the view asks for it with `getSpan`.
 */
export interface TimelineProtocol extends ViewProtocol {
  readonly toView:
    | {
        readonly type: 'trace';
        readonly runId: string;
        readonly title: string;
        /** The run is going: open spans grow until `now`, and patches follow. */
        readonly live: boolean;
        /** Whether the spans carry content (prompts, completions, arguments, results); the details pane says how to turn it on when not. */
        readonly contentRecorded: boolean;
        readonly spans: readonly TraceSpan[];
      }
    | { readonly type: 'patch'; readonly runId: string; readonly live: boolean; readonly spans: readonly TraceSpan[] }
    | { readonly type: 'error'; readonly message: string };
  /** After the view drew a trace or patch, or the selection changed: what it shows. */
  readonly fromView: { readonly type: 'shown'; readonly shown: TimelineShown };
  readonly state: TimelineState;
  readonly requests: {
    /** The whole span, or null if the run's trace has none by that id. */
    getSpan: { params: { readonly runId: string; readonly spanId: string }; result: TraceSpan | null };
  };
}

export type HostToTimeline = HostToView<TimelineProtocol>;

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

/** What the Trace timeline keeps across reloads. */
export interface TimelineState extends PanelState {
  readonly selectedSpanId: string | null;
  readonly focusedSpanId: string | null;
  readonly collapsed: readonly string[];
  readonly scrollTop: number;
}
