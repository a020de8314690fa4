import assert from 'node:assert/strict';
import { compactArgs, formatAgo, formatBytes, formatDuration, formatShare, formatTokens, formatTokensExact, formatUsd, shortId, truncate } from '../../src/shared/format';
import { spanDetails } from '../../webview/timeline/model/details';
import { statusText } from '../../webview/meter/model/meterView';
import { RUN_ID, T0, runRecord } from '../support/records';

describe('formatting (src/shared/format.ts): one rule for the CLI, the editor and the webviews', () => {
  describe('formatDuration', () => {
    const cases: readonly [number, string][] = [
      [-5, '0 ms'],
      [0, '0 ms'],
      [4.4, '4 ms'],
      [999, '999 ms'],
      [999.6, '1.0 s'],
      [1000, '1.0 s'],
      [1500, '1.5 s'],
      [12_340, '12.3 s'],
      [59_949, '59.9 s'],
      [59_950, '1 min'],
      [61_000, '1 min 1 s'],
      [119_600, '2 min'],
      [125_000, '2 min 5 s'],
      [245_000, '4 min 5 s'],
      [3_599_400, '59 min 59 s'],
      [3_599_600, '1 h'],
      [3_725_000, '1 h 2 min'],
      [7_200_000, '2 h'],
    ];
    for (const [ms, shown] of cases) {
      it(`shows ${ms} ms as "${shown}"`, () => assert.equal(formatDuration(ms), shown));
    }
  });

  describe('formatAgo', () => {
    const cases: readonly [number, string][] = [
      [-10, 'just now'],
      [4_999, 'just now'],
      [5_000, '5 s ago'],
      [59_999, '59 s ago'],
      [60_000, '1 min ago'],
      [3_599_999, '59 min ago'],
      [3_600_000, '1 h ago'],
      [86_399_999, '23 h ago'],
      [86_400_000, '1 d ago'],
      [30 * 86_400_000, '30 d ago'],
    ];
    for (const [ms, shown] of cases) {
      it(`shows ${ms} ms ago as "${shown}"`, () => assert.equal(formatAgo(ms), shown));
    }
  });

  describe('formatTokens', () => {
    const cases: readonly [number, string][] = [
      [0, '0'],
      [950, '950'],
      [999.4, '999'],
      [999.6, '1k'],
      [2000, '2k'],
      [2100, '2.1k'],
      [9999, '10k'],
      [12_300, '12.3k'],
      [21_400, '21.4k'],
      [99_940, '99.9k'],
      [99_960, '100k'],
      [123_456, '123k'],
      [999_400, '999k'],
      [999_600, '1M'],
      [1_250_000, '1.3M'],
      [4_500_000, '4.5M'],
      [12_500_000, '12.5M'],
      [2_000_000_000, '2B'],
    ];
    for (const [count, shown] of cases) {
      it(`shows ${count} tokens as "${shown}", never rounding up into "1000k"`, () => assert.equal(formatTokens(count), shown));
    }

    it('writes 12,300 tokens as 12.3k in the budget meter status bar and in the timeline alike', () => {
      const run = runRecord({ usage: { inputTokens: 12_000, outputTokens: 300 } });
      const report = { at: T0, run, subRuns: [], activeSince: null, budgets: [], held: [], recent: [], models: [] };
      assert.equal(statusText(report), '$(pulse) $0 · 12.3k tok');
      const span = {
        traceId: 'a'.repeat(32),
        spanId: 'b'.repeat(16),
        parentSpanId: null,
        name: 'chat gpt-4o-mini',
        kind: 'model' as const,
        startTime: T0,
        endTime: T0 + 10,
        status: 'ok' as const,
        statusMessage: null,
        attributes: { 'gen_ai.usage.input_tokens': 12_300, 'gen_ai.usage.output_tokens': 0 },
        events: [],
        flags: [],
      };
      assert.equal(spanDetails(span, T0, T0 + 10).facts.find((fact) => fact.label === 'Tokens')?.value, '12.3k in · 0 out');
    });

    it('writes an exact count for details', () => {
      assert.equal(formatTokensExact(12_345), '12,345 tokens');
      assert.equal(formatTokensExact(1), '1 token');
    });
  });

  describe('formatUsd', () => {
    it('writes money with the digits that matter', () => {
      assert.deepEqual(
        [0, 0.000045, 0.0001, 0.00066, 0.0012345, 0.0123, 0.05, 0.125, 0.5, 1.5, 1234.567].map(formatUsd),
        ['$0', '$0.000045', '$0.0001', '$0.00066', '$0.0012', '$0.0123', '$0.05', '$0.125', '$0.50', '$1.50', '$1,234.57'],
      );
      assert.equal(formatUsd(-0.05), '-$0.05');
      assert.equal(formatUsd(Number.NaN), '—');
    });
  });

  describe('shares, ids and text', () => {
    it('writes a share as a whole percentage, and a small one as <1%', () => {
      assert.deepEqual([0, 0.001, 0.25, 1.5, Number.POSITIVE_INFINITY].map(formatShare), ['0%', '<1%', '25%', '150%', '—']);
    });

    it('shortens a run id to its last six characters', () => {
      assert.equal(shortId(RUN_ID), RUN_ID.slice(-6));
    });

    it('flattens text to one line and cuts it with an ellipsis', () => {
      assert.equal(truncate('a  b\nc', 10), 'a b c');
      assert.equal(truncate('abcdefghij', 5), 'abcd…');
    });

    it('writes arguments in one line', () => {
      assert.equal(compactArgs({ flightId: 'UA66', price: 598 }), 'flightId: "UA66", price: 598');
      assert.equal(compactArgs(['a']), '["a"]');
      assert.equal(compactArgs(undefined), '');
    });

    it('writes a size in bytes, KB or MB', () => {
      assert.equal(formatBytes(512), '512 bytes');
      assert.equal(formatBytes(3.4 * 1024), '3.4 KB');
      assert.equal(formatBytes(187.2 * 2 ** 20), '187.2 MB');
      assert.equal(formatBytes(2 ** 20), '1 MB');
    });
  });
});
