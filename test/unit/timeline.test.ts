import assert from 'node:assert/strict';
import { TraceFeed } from '../../src/extension/trace/traceFeed';
import { outlineSpan, type HostToTimeline } from '../../src/protocol/webview';
import type { TraceSpan } from '../../src/runtime/trace/span';
import { CONTENT_NOT_RECORDED, spanDetails } from '../../webview/timeline/model/details';
import { prettyText, spanTokens, traceTotals } from '../../webview/timeline/model/spanFacts';
import { parentIndex, treeAction } from '../../webview/timeline/model/navigation';
import { axisTicks, barOf, formatOffset, position, ticks, tickStep, TICK_LABEL_PX, traceScale } from '../../webview/timeline/model/timeScale';
import { focusRow, openTrace, patchTrace, rowOf, saveState, selectSpan, toggle } from '../../webview/timeline/model/timeline';
import { buildTree, flagsOf, mergeSpans, pruneCollapsed, revealSpan, visibleRows, type Row } from '../../webview/timeline/model/tree';
import { pageSize, rowWindow, scrollToReveal } from '../../webview/timeline/model/windowing';
import { SYNTHETIC_START, syntheticTrace } from '../support/syntheticTrace';

const T0 = 1_790_000_000_000;

function span(spanId: string, parentSpanId: string | null, startTime: number, endTime: number | null, overrides: Partial<TraceSpan> = {}): TraceSpan {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId,
    parentSpanId,
    name: `span ${spanId}`,
    kind: 'tool',
    startTime: T0 + startTime,
    endTime: endTime === null ? null : T0 + endTime,
    status: 'ok',
    statusMessage: null,
    attributes: {},
    events: [],
    flags: [],
    ...overrides,
  };
}

/**
 *   root (0-100)
 *     a (10-40)
 *       a1 (12-20)
 *       a2 (20-30)   flagged (warning)
 *     b (50-90)
 *       b1 (60-70)   flagged (error)
 */
function smallTrace(): TraceSpan[] {
  return [
    span('b1', 'b', 60, 70, { flags: [{ kind: 'ignored_tool_error', severity: 'error', message: 'ignored', spanId: 'b1' }] }),
    span('root', null, 0, 100, { kind: 'agent' }),
    span('b', 'root', 50, 90, { kind: 'model' }),
    span('a', 'root', 10, 40, { kind: 'model' }),
    span('a2', 'a', 20, 30, { flags: [{ kind: 'repeated_call', severity: 'warning', message: 'again', spanId: 'a2' }] }),
    span('a1', 'a', 12, 20),
  ];
}

const ids = (rows: readonly Row[]) => rows.map((row) => row.node.span.spanId);

function traceMessage(spans: readonly TraceSpan[], overrides: Partial<Extract<HostToTimeline, { type: 'trace' }>> = {}) {
  return { type: 'trace' as const, runId: 'run_1', title: 'travel · run_1', live: false, contentRecorded: true, spans, ...overrides };
}

describe('Trace timeline model', () => {
  describe('tree', () => {
    it('nests spans under their parents, children in the order they started, with depths', () => {
      const tree = buildTree(smallTrace());
      assert.deepEqual(ids(visibleRows(tree, new Set())), ['root', 'a', 'a1', 'a2', 'b', 'b1']);
      assert.deepEqual(
        visibleRows(tree, new Set()).map((row) => row.node.depth),
        [0, 1, 2, 2, 1, 2],
      );
      assert.equal(tree.size, 6);
      assert.equal(tree.byId.get('a2')?.parent?.span.spanId, 'a');
      assert.deepEqual(
        visibleRows(tree, new Set()).map((row) => row.node.siblingIndex),
        [0, 0, 0, 1, 1, 0],
      );
    });

    it('leaves out the descendants of collapsed spans, and marks rows expanded only when they have shown children', () => {
      const rows = visibleRows(buildTree(smallTrace()), new Set(['a']));
      assert.deepEqual(ids(rows), ['root', 'a', 'b', 'b1']);
      assert.deepEqual(
        rows.map((row) => row.expanded),
        [true, false, true, false],
      );
      assert.deepEqual(ids(visibleRows(buildTree(smallTrace()), new Set(['root']))), ['root']);
    });

    it('makes spans with a missing parent roots, and breaks parent cycles so every span shows once', () => {
      const spans = [span('x', 'gone', 5, 6), span('r', null, 0, 10), span('c1', 'c2', 1, 2), span('c2', 'c1', 3, 4), span('self', 'self', 7, 8)];
      const tree = buildTree(spans);
      const rows = visibleRows(tree, new Set());
      assert.deepEqual([...ids(rows)].sort(), ['c1', 'c2', 'r', 'self', 'x']);
      assert.deepEqual(
        tree.roots.map((root) => root.span.spanId),
        ['r', 'c1', 'x', 'self'],
      );
      assert.equal(tree.byId.get('c2')?.parent?.span.spanId, 'c1');
    });

    it('carries the worst flag of the descendants up to every ancestor', () => {
      const tree = buildTree(smallTrace());
      assert.equal(tree.byId.get('root')?.descendantFlags, 'error');
      assert.equal(tree.byId.get('a')?.descendantFlags, 'warning');
      assert.equal(tree.byId.get('b')?.descendantFlags, 'error');
      assert.equal(tree.byId.get('a2')?.descendantFlags, null);
    });

    it('lists flags errors first, in tree order', () => {
      assert.deepEqual(
        flagsOf(buildTree(smallTrace())).map((flag) => flag.spanId),
        ['b1', 'a2'],
      );
    });

    it('reveals a span by expanding its ancestors, and prunes collapsed ids that are gone or leaves', () => {
      const tree = buildTree(smallTrace());
      assert.deepEqual([...revealSpan(tree, new Set(['root', 'a', 'b']), 'a1')], ['b']);
      assert.deepEqual([...pruneCollapsed(tree, ['a', 'a1', 'nope'])], ['a']);
    });

    it('merges a patch: replaced spans keep their place, new ones are appended', () => {
      const current = [span('1', null, 0, null), span('2', '1', 1, 2)];
      const merged = mergeSpans(current, [span('1', null, 0, 10), span('3', '1', 3, 4)]);
      assert.deepEqual(
        merged.map((item) => [item.spanId, item.endTime]),
        [
          ['1', T0 + 10],
          ['2', T0 + 2],
          ['3', T0 + 4],
        ],
      );
    });

    it('builds and flattens a 10,000-span trace, keeping every span once, each after its parent', () => {
      const spans = syntheticTrace(10_000);
      assert.equal(spans.length, 10_000);
      const tree = buildTree(spans);
      const rows = visibleRows(tree, new Set());
      assert.equal(rows.length, 10_000);
      assert.equal(new Set(ids(rows)).size, 10_000);
      for (const row of rows) {
        const parent = row.node.parent;
        if (parent) assert.ok(parent.span.startTime <= row.node.span.startTime, `${row.node.span.spanId} starts before its parent`);
      }
    });
  });

  describe('time scale', () => {
    it('spans the trace, an open span ending now', () => {
      assert.deepEqual(traceScale(smallTrace(), T0 + 500), { start: T0, end: T0 + 100 });
      assert.deepEqual(traceScale([span('o', null, 0, null)], T0 + 250), { start: T0, end: T0 + 250 });
      assert.deepEqual(traceScale([span('z', null, 0, 0)], T0), { start: T0, end: T0 + 1 });
      assert.deepEqual(traceScale([], T0), { start: T0, end: T0 + 1 });
    });

    it('places bars in percent of the track, never narrower than the minimum nor past the end', () => {
      const scale = { start: T0, end: T0 + 100 };
      assert.equal(position(scale, T0 + 25), 25);
      assert.equal(position(scale, T0 - 5), 0);
      assert.equal(position(scale, T0 + 150), 100);
      assert.deepEqual(barOf(span('a', null, 10, 40), scale, T0), { left: 10, width: 30 });
      assert.deepEqual(barOf(span('z', null, 50, 50), scale, T0, 0.5), { left: 50, width: 0.5 });
      assert.deepEqual(barOf(span('e', null, 100, 100), scale, T0, 0.5), { left: 99.5, width: 0.5 });
      assert.deepEqual(barOf(span('o', null, 60, null), scale, T0 + 80), { left: 60, width: 20 });
    });

    it('puts ticks at steps a clock reads well, labelled as offsets', () => {
      assert.equal(tickStep(1000, 5), 200);
      assert.equal(tickStep(1234, 6), 500);
      assert.equal(tickStep(10, 10), 1);
      assert.equal(tickStep(0, 5), 1);
      assert.equal(tickStep(95_000, 6), 30_000);
      assert.equal(tickStep(75 * 60_000, 6), 15 * 60_000);
      assert.equal(tickStep(30 * 86_400_000, 6), 5 * 86_400_000);
      assert.equal(tickStep(100 * 86_400_000, 6), 20 * 86_400_000);
      const marks = ticks({ start: T0, end: T0 + 1000 }, 5);
      assert.deepEqual(
        marks.map((tick) => tick.label),
        ['0', '200 ms', '400 ms', '600 ms', '800 ms', '1.0 s'],
      );
      assert.deepEqual(
        marks.map((tick) => tick.position),
        [0, 20, 40, 60, 80, 100],
      );
    });

    it('fits the axis ticks to its width: labels never crowd and none is cut at the right edge', () => {
      const scale = { start: T0, end: T0 + 1000 };
      const labelled = (width: number) => axisTicks(scale, width).filter((tick) => tick.label !== '');
      assert.deepEqual(labelled(300).map((tick) => tick.label), ['0', '500 ms']);
      assert.deepEqual(labelled(1200).map((tick) => tick.label), ['0', '100 ms', '200 ms', '300 ms', '400 ms', '500 ms', '600 ms', '700 ms', '800 ms', '900 ms']);
      for (const width of [90, 160, 240, 333, 500, 777, 1024, 1600, 2560]) {
        for (const end of [1, 7, 999, 1000, 1500, 95_000, 3_600_000]) {
          const marks = axisTicks({ start: T0, end: T0 + end }, width);
          const shown = marks.filter((tick) => tick.label !== '').map((tick) => (tick.position / 100) * width);
          assert.ok(marks.length <= Math.max(2, width / TICK_LABEL_PX + 1), `${marks.length} ticks on ${width} px`);
          for (const [index, left] of shown.entries()) {
            assert.ok(left + TICK_LABEL_PX <= width, `a label at ${left} px is cut on a ${width} px axis (${end} ms)`);
            if (index > 0) assert.ok(left - (shown[index - 1] ?? 0) >= TICK_LABEL_PX - 0.001, `labels crowd on a ${width} px axis (${end} ms)`);
          }
        }
      }
    });
  });

  describe('windowing', () => {
    const viewport = { scrollTop: 0, height: 220, rowHeight: 22, rowCount: 10_000 };

    it('draws the rows in view and a few either side, whatever the size of the list', () => {
      assert.deepEqual(rowWindow(viewport, 5), { first: 0, end: 15, offset: 0, totalHeight: 220_000 });
      assert.deepEqual(rowWindow({ ...viewport, scrollTop: 22_000 + 11 }, 5), { first: 995, end: 1016, offset: 995 * 22, totalHeight: 220_000 });
      const end = rowWindow({ ...viewport, scrollTop: 219_780 }, 5);
      assert.deepEqual(end, { first: 9985, end: 10_000, offset: 9985 * 22, totalHeight: 220_000 });
    });

    it('shows the last rows when the scroll position is past the end, and nothing for no rows', () => {
      assert.deepEqual(rowWindow({ ...viewport, rowCount: 20, scrollTop: 5000 }, 2), { first: 8, end: 20, offset: 176, totalHeight: 440 });
      assert.deepEqual(rowWindow({ ...viewport, rowCount: 0 }), { first: 0, end: 0, offset: 0, totalHeight: 0 });
      assert.deepEqual(rowWindow({ ...viewport, rowCount: 3, height: 0 }, 1), { first: 0, end: 1, offset: 0, totalHeight: 66 });
    });

    it('scrolls as little as possible to reveal a row', () => {
      const at = { ...viewport, scrollTop: 2200 };
      assert.equal(scrollToReveal(at, 105), 2200);
      assert.equal(scrollToReveal(at, 99), 99 * 22);
      assert.equal(scrollToReveal(at, 110), 111 * 22 - 220);
      assert.equal(scrollToReveal(at, 0), 0);
    });

    it('knows the page size', () => {
      assert.equal(pageSize({ height: 230, rowHeight: 22 }), 10);
      assert.equal(pageSize({ height: 5, rowHeight: 22 }), 1);
    });
  });

  describe('keyboard navigation', () => {
    const rows = visibleRows(buildTree(smallTrace()), new Set(['b']));
    // root, a, a1, a2, b (collapsed)

    it('moves with the arrows, Home, End and the page keys, and stays put (in sight) at the ends', () => {
      assert.deepEqual(treeAction('ArrowDown', rows, 0, 3), { kind: 'focus', index: 1 });
      assert.deepEqual(treeAction('ArrowUp', rows, 0, 3), { kind: 'focus', index: 0 });
      assert.deepEqual(treeAction('ArrowDown', rows, 4, 3), { kind: 'focus', index: 4 });
      assert.deepEqual(treeAction('End', rows, 1, 3), { kind: 'focus', index: 4 });
      assert.deepEqual(treeAction('Home', rows, 3, 3), { kind: 'focus', index: 0 });
      assert.deepEqual(treeAction('PageDown', rows, 0, 3), { kind: 'focus', index: 3 });
      assert.deepEqual(treeAction('PageDown', rows, 3, 3), { kind: 'focus', index: 4 });
      assert.deepEqual(treeAction('PageUp', rows, 4, 3), { kind: 'focus', index: 1 });
    });

    it('collapses and expands with Left and Right, or moves to the parent and the first child', () => {
      assert.deepEqual(treeAction('ArrowLeft', rows, 1, 3), { kind: 'collapse', spanId: 'a' });
      assert.deepEqual(treeAction('ArrowLeft', rows, 3, 3), { kind: 'focus', index: 1 });
      assert.deepEqual(treeAction('ArrowLeft', rows, 4, 3), { kind: 'focus', index: 0 });
      assert.deepEqual(treeAction('ArrowLeft', rows, 0, 3).kind, 'collapse');
      assert.deepEqual(treeAction('ArrowRight', rows, 4, 3), { kind: 'expand', spanId: 'b' });
      assert.deepEqual(treeAction('ArrowRight', rows, 1, 3), { kind: 'focus', index: 2 });
      assert.deepEqual(treeAction('ArrowRight', rows, 2, 3), { kind: 'none' });
      assert.equal(parentIndex(rows, 2), 1);
      assert.equal(parentIndex(rows, 0), -1);
    });

    it('selects with Enter or Space, focuses the first or last row when none is focused, and ignores other keys', () => {
      assert.deepEqual(treeAction('Enter', rows, 2, 3), { kind: 'select', index: 2 });
      assert.deepEqual(treeAction(' ', rows, 2, 3), { kind: 'select', index: 2 });
      assert.deepEqual(treeAction('ArrowDown', rows, -1, 3), { kind: 'focus', index: 0 });
      assert.deepEqual(treeAction('End', rows, -1, 3), { kind: 'focus', index: 4 });
      assert.deepEqual(treeAction('Enter', rows, -1, 3), { kind: 'none' });
      assert.deepEqual(treeAction('x', rows, 1, 3), { kind: 'none' });
      assert.deepEqual(treeAction('ArrowDown', [], 0, 3), { kind: 'none' });
    });
  });

  describe('formatting', () => {
    it('labels ticks as precisely as the step between them needs', () => {
      assert.equal(formatOffset(0, 200), '0');
      assert.equal(formatOffset(400, 200), '400 ms');
      assert.equal(formatOffset(1500, 500), '1.5 s');
      assert.equal(formatOffset(20_000, 5000), '20 s');
      assert.equal(formatOffset(120_000, 60_000), '2 min');
      assert.equal(formatOffset(150_000, 50_000), '2 min 30 s');
    });

    it('reads tokens from gen_ai.usage.* and pretty-prints JSON held in strings', () => {
      assert.deepEqual(spanTokens(span('m', null, 0, 1, { attributes: { 'gen_ai.usage.input_tokens': 12 } })), { input: 12, output: 0 });
      assert.equal(spanTokens(span('t', null, 0, 1)), null);
      assert.equal(prettyText('{"a":1}'), '{\n  "a": 1\n}');
      assert.equal(prettyText('[not json'), '[not json');
      assert.equal(prettyText('plain'), 'plain');
    });

    it('totals tokens and cost over model calls only, so agent spans carrying sums do not count twice', () => {
      const usage = (input: number, output: number, cost: number) => ({
        'gen_ai.usage.input_tokens': input,
        'gen_ai.usage.output_tokens': output,
        'keel.cost.usd': cost,
      });
      const spans = [
        span('root', null, 0, 100, { kind: 'agent', attributes: usage(30, 3, 0.3) }),
        span('m1', 'root', 0, 10, { kind: 'model', attributes: usage(10, 1, 0.1) }),
        span('m2', 'root', 20, null, { kind: 'model', attributes: usage(20, 2, 0.2), flags: [{ kind: 'refusal', severity: 'error', message: 'no', spanId: 'm2' }] }),
      ];
      assert.deepEqual(traceTotals(spans, T0 + 150), { spans: 3, duration: 150, inputTokens: 30, outputTokens: 3, cost: 0.30000000000000004, errors: 1, warnings: 0 });
    });
  });

  describe('details', () => {
    it('says how to turn content on, for spans that would carry some, when the trace was built without it', () => {
      const tool = span('t', 'root', 0, 10, { kind: 'tool' });
      assert.equal(spanDetails(tool, T0, T0 + 10, false).note, CONTENT_NOT_RECORDED);
      assert.match(CONTENT_NOT_RECORDED, /keel\.trace\.captureContent/);
      assert.equal(spanDetails(span('r', 't', 0, 5, { kind: 'retry' }), T0, T0 + 10, false).note, null, 'a retry attempt has no content to miss');
      assert.equal(spanDetails(tool, T0, T0 + 10, true).note, null);
    });

    it('shows facts, flags, content sections, the error, other attributes and events', () => {
      const details = spanDetails(
        span('m', 'root', 10, 40, {
          name: 'chat gpt-4o-mini',
          kind: 'model',
          status: 'error',
          statusMessage: 'The model answered 500.',
          attributes: {
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.response.finish_reasons': ['stop', 'length'],
            'gen_ai.usage.input_tokens': 1200,
            'gen_ai.usage.output_tokens': 80,
            'keel.cost.usd': 0.00023,
            'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]',
            'error.type': 'http_500',
            'keel.step.id': 3,
            'keel.note': 'x'.repeat(200),
          },
          events: [{ name: 'exception', time: T0 + 15, attributes: { 'exception.type': 'ApiError', 'exception.message': 'boom' } }],
          flags: [{ kind: 'refusal', severity: 'warning', message: 'The answer refuses.', spanId: 'm' }],
        }),
        T0,
        T0 + 100,
      );
      assert.equal(details.title, 'chat gpt-4o-mini');
      assert.deepEqual(details.facts, [
        { label: 'Kind', value: 'model' },
        { label: 'Status', value: 'error' },
        { label: 'Duration', value: '30 ms' },
        { label: 'Starts', value: '+10 ms' },
        { label: 'Tokens', value: '1.2k in · 80 out' },
        { label: 'Cost', value: '$0.00023' },
        { label: 'Model', value: 'gpt-4o-mini' },
        { label: 'Finish reasons', value: 'stop, length' },
        { label: 'Span', value: 'm' },
      ]);
      assert.deepEqual(details.flags, [{ kind: 'refusal', severity: 'warning', message: 'The answer refuses.' }]);
      assert.deepEqual(
        details.sections.map((section) => [section.label, section.tone]),
        [
          ['Error', 'error'],
          ['Input messages', 'plain'],
          ['keel.note', 'plain'],
        ],
      );
      assert.equal(details.sections[0]?.text, 'The model answered 500.\nerror.type: http_500\nApiError: boom');
      assert.match(details.sections[1]?.text ?? '', /^\[\n {2}\{\n {4}"role": "user"/);
      assert.deepEqual(details.attributes, [{ label: 'keel.step.id', value: '3' }]);
      assert.deepEqual(details.events, [
        {
          name: 'exception',
          at: '+5 ms',
          attributes: [
            { label: 'exception.message', value: 'boom' },
            { label: 'exception.type', value: 'ApiError' },
          ],
        },
      ]);
    });

    it('shows a tool call with its arguments and result, and an open span as running so far', () => {
      const details = spanDetails(
        span('t', 'root', 50, null, {
          attributes: { 'gen_ai.tool.name': 'book_flight', 'gen_ai.tool.call.arguments': '{"flight":"UA66"}', 'gen_ai.tool.call.result': 'Booked.' },
        }),
        T0,
        T0 + 80,
      );
      assert.equal(details.open, true);
      assert.deepEqual(details.facts.slice(1, 3), [
        { label: 'Status', value: 'running' },
        { label: 'Duration', value: '30 ms so far' },
      ]);
      assert.deepEqual(
        details.sections.map((section) => [section.label, section.text]),
        [
          ['Arguments', '{\n  "flight": "UA66"\n}'],
          ['Result', 'Booked.'],
        ],
      );
    });
  });

  describe('timeline state', () => {
    it('opens a trace with every span expanded and the first row focused', () => {
      const model = openTrace(traceMessage(smallTrace()));
      assert.equal(model.rows.length, 6);
      assert.equal(model.focused, 'root');
      assert.equal(model.selected, null);
      assert.equal(rowOf(model, 'b1'), 5);
    });

    it('collapses and expands, moving a focus that was inside to the collapsed span', () => {
      let model = openTrace(traceMessage(smallTrace()));
      model = focusRow(model, rowOf(model, 'a2'));
      model = toggle(model, 'a');
      assert.deepEqual(ids(model.rows), ['root', 'a', 'b', 'b1']);
      assert.equal(model.focused, 'a');
      assert.equal(toggle(model, 'a', false), model);
      assert.equal(toggle(model, 'a1'), model, 'a leaf does not collapse');
      model = toggle(model, 'a', true);
      assert.equal(model.rows.length, 6);
    });

    it('selects a hidden span by expanding its ancestors', () => {
      let model = openTrace(traceMessage(smallTrace()));
      model = toggle(toggle(model, 'b'), 'root');
      assert.equal(model.rows.length, 1);
      model = selectSpan(model, 'b1');
      assert.equal(model.selected, 'b1');
      assert.equal(model.focused, 'b1');
      assert.equal(rowOf(model, 'b1'), 5);
      assert.equal(selectSpan(model, 'nope'), model);
      assert.equal(selectSpan(model, null).selected, null);
    });

    it('restores collapse, focus and selection from saved state of the same run only', () => {
      let model = openTrace(traceMessage(smallTrace()));
      model = selectSpan(toggle(model, 'b'), 'a1');
      const saved = saveState(model, 44);
      assert.deepEqual(saved, { runId: 'run_1', selectedSpanId: 'a1', focusedSpanId: 'a1', collapsed: ['b'], scrollTop: 44 });
      const restored = openTrace(traceMessage(smallTrace()), saved);
      assert.deepEqual([...restored.collapsed], ['b']);
      assert.equal(restored.selected, 'a1');
      assert.equal(restored.focused, 'a1');
      const other = openTrace(traceMessage(smallTrace(), { runId: 'run_2' }), saved);
      assert.equal(other.collapsed.size, 0);
      assert.equal(other.selected, null);
    });

    it('applies patches of a live run, keeping what the person did, and ignores patches of other runs', () => {
      const live = [span('root', null, 0, null, { kind: 'agent' }), span('m1', 'root', 0, 10, { kind: 'model' })];
      let model = selectSpan(openTrace(traceMessage(live, { live: true })), 'm1');
      model = patchTrace(model, { type: 'patch', runId: 'run_1', live: false, spans: [span('root', null, 0, 30, { kind: 'agent' }), span('t1', 'root', 12, 20)] });
      assert.equal(model.live, false);
      assert.deepEqual(ids(model.rows), ['root', 'm1', 't1']);
      assert.equal(model.tree.byId.get('root')?.span.endTime, T0 + 30);
      assert.equal(model.selected, 'm1');
      assert.equal(patchTrace(model, { type: 'patch', runId: 'run_2', live: true, spans: [] }), model);
    });

    it('handles 10,000 spans: opening, collapsing the root and selecting a deep span', () => {
      const spans = syntheticTrace(10_000, { live: true });
      let model = openTrace(traceMessage(spans, { live: true }));
      const root = model.rows[0]?.node.span.spanId ?? '';
      model = toggle(model, root);
      assert.equal(model.rows.length, 1);
      const deepest = [...model.tree.byId.values()].reduce((deep, node) => (node.depth > deep.depth ? node : deep));
      model = selectSpan(model, deepest.span.spanId);
      assert.ok(rowOf(model, deepest.span.spanId) > 0);
      assert.equal(model.tree.byId.get(root)?.span.endTime, null, 'a live trace has its root open');
      assert.equal(model.tree.byId.get(root)?.span.startTime, SYNTHETIC_START);
    });
  });

  describe('trace feed (host)', () => {
    const withContent = (spanId: string, parent: string | null, end: number | null, extra: Partial<TraceSpan> = {}) =>
      span(spanId, parent, 0, end, {
        attributes: { 'gen_ai.usage.input_tokens': 5, 'keel.cost.usd': 0.1, 'gen_ai.input.messages': '[]', 'gen_ai.tool.name': 'x' },
        events: [{ name: 'exception', time: T0, attributes: {} }],
        ...extra,
      });

    it('outlines spans: only the attributes the waterfall shows, and no events', () => {
      assert.deepEqual(outlineSpan(withContent('a', null, 5)), {
        ...withContent('a', null, 5),
        attributes: { 'gen_ai.usage.input_tokens': 5, 'keel.cost.usd': 0.1 },
        events: [],
      });
    });

    it('sends all outlines first, then those new or changed, and all again after a reset or a removal', () => {
      const feed = new TraceFeed();
      const first = [withContent('root', null, null), withContent('a', 'root', 2)];
      const full = feed.update(first);
      assert.equal(full.kind, 'full');
      assert.deepEqual(full.spans, first.map(outlineSpan));
      assert.deepEqual(feed.update(first), { kind: 'patch', spans: [] });
      const second = [withContent('root', null, 10), withContent('a', 'root', 2), withContent('b', 'root', 4)];
      const update = feed.update(second);
      assert.equal(update.kind, 'patch');
      assert.deepEqual(
        update.spans.map((item) => item.spanId),
        ['root', 'b'],
      );
      assert.equal(feed.update([withContent('root', null, 10)]).kind, 'full');
      feed.reset();
      assert.equal(feed.update([withContent('root', null, 10)]).kind, 'full');
    });

    it('sends a span again when content arrives that its outline does not show, and keeps whole spans for the details', () => {
      const feed = new TraceFeed();
      feed.update([withContent('a', null, 5)]);
      const answered = withContent('a', null, 5, { attributes: { 'gen_ai.output.messages': '[{}]', 'gen_ai.input.messages': '[]' } });
      const update = feed.update([answered]);
      assert.deepEqual(update.kind === 'patch' ? update.spans.map((item) => item.spanId) : [], ['a']);
      assert.deepEqual(feed.span('a'), answered);
      assert.equal(feed.span('nope'), undefined);
    });
  });
});
