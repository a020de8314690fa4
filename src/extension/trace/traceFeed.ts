import { outlineSpan } from '../../protocol/webview';
import type { TraceSpan } from '../../protocol/trace';

/**
 * What the host feeds one Trace timeline: span outlines, whole the first time and then only those
 * new or changed since; and any whole span the view asks for, from the last trace fetched. No
 * vscode here, so unit tests can run it.
 */
export type TraceUpdate =
  | { readonly kind: 'full'; readonly spans: readonly TraceSpan[] }
  | { readonly kind: 'patch'; readonly spans: readonly TraceSpan[] };

export class TraceFeed {
  private spans = new Map<string, TraceSpan>();
  private sent: Map<string, string> | undefined;

  /** The view starts over (it loaded again): the next update is whole. */
  reset(): void {
    this.sent = undefined;
  }

  /**
   * The outlines that bring the view to `spans`: all of them the first time and whenever a span
   * the view has was dropped (a patch only adds and replaces), else those new or changed.
   */
  update(spans: readonly TraceSpan[]): TraceUpdate {
    this.spans = new Map(spans.map((span) => [span.spanId, span]));
    const outlines = spans.map(outlineSpan);
    // An outline, plus how many attributes and events the whole span has: content that arrives
    // later (an answer, a result) changes the span even when its outline stays the same.
    const encoded = new Map(
      outlines.map((outline, index) => {
        const span = spans[index] as TraceSpan;
        return [outline.spanId, `${Object.keys(span.attributes).length}/${span.events.length}/${JSON.stringify(outline)}`];
      }),
    );
    const previous = this.sent;
    this.sent = encoded;
    if (!previous) return { kind: 'full', spans: outlines };
    for (const spanId of previous.keys()) if (!encoded.has(spanId)) return { kind: 'full', spans: outlines };
    return { kind: 'patch', spans: outlines.filter((span) => previous.get(span.spanId) !== encoded.get(span.spanId)) };
  }

  /** The whole span, as last fetched. */
  span(spanId: string): TraceSpan | undefined {
    return this.spans.get(spanId);
  }
}
