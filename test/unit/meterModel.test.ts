import assert from 'node:assert/strict';
import { runPrompt, runWarning, RUN_PROMPT } from '../../src/extension/budget/spendText';
import type { ModelForecast, RunForecast } from '../../src/protocol/records';
import { forecastSentence } from '../../src/runtime/budget/forecast';
import type { SpendReport } from '../../src/protocol/spend';
import type { BudgetRecord, ReservationRecord, RunRecord } from '../../src/runtime/store/checkpointStore';
import { breakdown } from '../../webview/meter/model/breakdown';
import { gauge } from '../../webview/meter/model/gauge';
import { activeTime, buildMeterView, shownOf, spendTotals, statusText, statusTooltip, warningText } from '../../webview/meter/model/meterView';
import { RUN_ID, T0, runRecord } from '../support/records';

const CHILD_ID = 'run_child00000000000000001';
const GRANDCHILD_ID = 'run_grand00000000000000002';
const NONE = { inputTokens: 0, outputTokens: 0, usd: 0 };

function budget(overrides: Partial<BudgetRecord> & Pick<BudgetRecord, 'id'>): BudgetRecord {
  return { kind: overrides.id.startsWith('pool:') ? 'pool' : 'run', limits: {}, spent: NONE, reserved: NONE, createdAt: T0, ...overrides };
}

function reservation(overrides: Partial<ReservationRecord> & Pick<ReservationRecord, 'id'>): ReservationRecord {
  return {
    runId: RUN_ID,
    seq: 1,
    model: 'openai:gpt-4o-mini',
    budgetIds: [`run:${RUN_ID}`],
    amounts: { inputTokens: 1200, outputTokens: 800, usd: 0.00066 },
    status: 'held',
    actual: null,
    createdAt: T0 + 9000,
    closedAt: null,
    ...overrides,
  };
}

/** A run with a budget, a sub-agent (which has one of its own), a call in flight and a shared pool. */
function report(overrides: Partial<SpendReport> = {}): SpendReport {
  const run: RunRecord = runRecord({
    agent: 'lead',
    stepCount: 6,
    usage: { inputTokens: 9000, outputTokens: 1000 },
    costUsd: 0.0021,
    activeMs: 2000,
    budget: { usd: 0.01, tokens: 40_000, steps: 20, wallTimeMs: 60_000, warnAt: 0.5 },
  });
  const child = runRecord({ id: CHILD_ID, agent: 'researcher', parentRunId: RUN_ID, parentSeq: 2, usage: { inputTokens: 3000, outputTokens: 500 }, costUsd: 0.0084, state: 'completed' });
  const grandchild = runRecord({ id: GRANDCHILD_ID, agent: 'checker', parentRunId: CHILD_ID, parentSeq: 2, usage: { inputTokens: 100, outputTokens: 20 }, costUsd: 0, costKnown: true, state: 'completed' });
  return {
    at: T0 + 10_000,
    run,
    subRuns: [child, grandchild],
    activeSince: T0 + 8000,
    budgets: [
      budget({ id: `run:${RUN_ID}`, limits: run.budget ?? {}, spent: { inputTokens: 12_100, outputTokens: 1520, usd: 0.0105 }, reserved: { inputTokens: 1200, outputTokens: 800, usd: 0.00066 } }),
      budget({ id: 'pool:daily:2026-11-26', limits: { usd: 1 }, spent: { inputTokens: 50_000, outputTokens: 9000, usd: 0.25 }, reserved: { inputTokens: 1200, outputTokens: 800, usd: 0.00066 } }),
    ],
    held: [reservation({ id: `${RUN_ID}:7:1`, seq: 7 })],
    recent: [reservation({ id: `${CHILD_ID}:1:1`, runId: CHILD_ID, model: 'openai:gpt-4o', status: 'settled', actual: { inputTokens: 3000, outputTokens: 500, usd: 0.0084 }, closedAt: T0 + 7000 })],
    models: [
      { runId: RUN_ID, model: 'openai:gpt-4o-mini', calls: 3, inputTokens: 9000, outputTokens: 1000, usd: 0.0021, unpricedCalls: 0 },
      { runId: CHILD_ID, model: 'openai:gpt-4o', calls: 1, inputTokens: 3000, outputTokens: 500, usd: 0.0084, unpricedCalls: 0 },
      { runId: GRANDCHILD_ID, model: 'openai:gpt-4o-mini', calls: 1, inputTokens: 100, outputTokens: 20, usd: 0.000027, unpricedCalls: 0 },
    ],
    ...overrides,
  };
}

describe('budget meter: gauge math (webview/meter/model/gauge)', () => {
  it('places the spent part, the reserved part after it, and the warning line', () => {
    assert.deepEqual(gauge({ spent: 25, reserved: 10, limit: 100 }), { spentFraction: 0.25, reservedFraction: 0.1, warnFraction: 0.8, share: 0.25, level: 'ok' });
    assert.deepEqual(gauge({ spent: 50, reserved: 0, limit: 100, warnAt: 0.5 }).level, 'warn');
  });

  it('warns when what is held could take spending past the warning line', () => {
    const held = gauge({ spent: 70, reserved: 15, limit: 100 });
    assert.equal(held.level, 'warn');
    assert.equal(held.spentFraction + held.reservedFraction, 0.85);
  });

  it('never draws past the end of the bar, and says when the limit is reached', () => {
    const full = gauge({ spent: 90, reserved: 30, limit: 100 });
    assert.equal(full.spentFraction, 0.9);
    assert.ok(Math.abs(full.spentFraction + full.reservedFraction - 1) < 1e-12);
    const over = gauge({ spent: 12, reserved: 0, limit: 10 });
    assert.deepEqual([over.spentFraction, over.reservedFraction, over.share, over.level], [1, 0, 1.2, 'over']);
  });

  it('has no scale without a limit, and a limit of zero is reached from the start', () => {
    assert.deepEqual(gauge({ spent: 5, reserved: 1, limit: undefined }), { spentFraction: 0, reservedFraction: 0, warnFraction: null, share: null, level: 'none' });
    assert.equal(gauge({ spent: 0, reserved: 0, limit: 0 }).level, 'over');
    assert.equal(gauge({ spent: -1, reserved: -1, limit: 10 }).spentFraction, 0);
  });
});

describe('budget meter: per-model breakdown (webview/meter/model/breakdown)', () => {
  it('sums each model over the runs, most expensive first, with its share of the money', () => {
    const { rows, total } = breakdown(report().models);
    assert.deepEqual(
      rows.map((row) => [row.model, row.calls, row.tokens, row.runs]),
      [
        ['openai:gpt-4o', 1, 3500, 1],
        ['openai:gpt-4o-mini', 4, 10_120, 2],
      ],
    );
    assert.ok(Math.abs((rows[0]?.share ?? 0) - 0.0084 / 0.010527) < 1e-9);
    assert.ok(Math.abs(rows.reduce((sum, row) => sum + row.share, 0) - 1) < 1e-12);
    assert.deepEqual({ ...total, usd: Number(total.usd.toFixed(6)) }, { calls: 5, inputTokens: 12_100, outputTokens: 1520, tokens: 13_620, usd: 0.010527, unpricedCalls: 0, runs: 3 });
  });

  it('shares by tokens when nothing cost money, and keeps unpriced calls apart', () => {
    const { rows } = breakdown([
      { runId: 'a', model: 'keel.scripted:x', calls: 1, inputTokens: 300, outputTokens: 0, usd: 0, unpricedCalls: 0 },
      { runId: 'a', model: 'openai:llama3.1', calls: 2, inputTokens: 100, outputTokens: 0, usd: 0, unpricedCalls: 2 },
    ]);
    assert.deepEqual(rows.map((row) => [row.model, row.share, row.unpricedCalls]), [
      ['keel.scripted:x', 0.75, 0],
      ['openai:llama3.1', 0.25, 2],
    ]);
    assert.deepEqual(breakdown([]).rows, []);
  });
});

describe('budget meter: the view of a spend report (webview/meter/model/meterView)', () => {
  it('takes the run’s spend from its own budget, sub-agents included, and what its calls in flight hold', () => {
    assert.deepEqual(spendTotals(report()), { tokens: 13_620, usd: 0.0105, heldTokens: 2000, heldUsd: 0.00066, costKnown: true });
    // Without a budget of its own: the run records, summed, and the held reservations.
    const unbudgeted = report({ budgets: [] });
    const summed = spendTotals(unbudgeted);
    assert.deepEqual({ ...summed, usd: Number(summed.usd.toFixed(10)) }, { tokens: 13_620, usd: 0.0105, heldTokens: 2000, heldUsd: 0.00066, costKnown: true });
  });

  it('draws a gauge per limit: tokens, money, steps and active time, with the warning line of the run’s budget', () => {
    const view = buildMeterView(report(), T0 + 11_000);
    assert.equal(view.title, `lead · ${RUN_ID.slice(-6)}`);
    assert.equal(view.live, true);
    assert.deepEqual(
      view.gauges.map((item) => [item.key, item.value, item.limit, item.held, item.share, item.gauge.level]),
      [
        ['tokens', '13.6k', '40k', '2k', '34%', 'ok'],
        ['usd', '$0.0105', '$0.01', '$0.00066', '105%', 'over'],
        ['steps', '6', '20', null, '30%', 'ok'],
        ['time', '5.0 s', '1 min', null, '8%', 'ok'],
      ],
    );
    assert.equal(view.gauges[0]?.gauge.warnFraction, 0.5);
    assert.equal(view.gauges[0]?.detail, '13,620 tokens spent; 2,000 tokens held by calls in flight; limit 40,000 tokens, warning at 50%.');
    assert.equal(activeTime(report(), T0 + 11_000), 5000);
    assert.equal(activeTime(report({ activeSince: null }), T0 + 11_000), 2000);
  });

  it('shows the other budgets it draws on, the models, the reservations and the sub-agent runs as a tree', () => {
    const view = buildMeterView(report(), T0 + 11_000);
    assert.deepEqual(view.budgets.map((item) => [item.label, item.gauges.map((g) => `${g.value}/${g.limit}`)]), [['Shared pool · daily:2026-11-26', ['$0.25/$1.00']]]);
    assert.deepEqual(view.models.map((row) => [row.model, row.tokens, row.usd, row.shareText]), [
      ['openai:gpt-4o', '3.5k', '$0.0084', '80%'],
      ['openai:gpt-4o-mini', '10.1k', '$0.0021', '20%'],
    ]);
    assert.deepEqual(view.modelTotal, { calls: 5, tokens: '13.6k', usd: '$0.0105' });
    assert.deepEqual(view.held, [
      { id: `${RUN_ID}:7:1`, run: `lead · ${RUN_ID.slice(-6)}`, model: 'openai:gpt-4o-mini', status: 'held', amount: '2k tok · $0.00066', actual: null, age: '2.0 s' },
    ]);
    assert.deepEqual(view.recent.map((row) => [row.run, row.actual, row.age]), [[`researcher · ${CHILD_ID.slice(-6)}`, '3.5k tok · $0.0084', '4.0 s ago']]);
    assert.deepEqual(view.subRuns.map((row) => [row.label, row.depth, row.tokens, row.usd]), [
      [`researcher · ${CHILD_ID.slice(-6)}`, 1, '3.5k', '$0.0084'],
      [`checker · ${GRANDCHILD_ID.slice(-6)}`, 2, '120', '$0'],
    ]);
    assert.deepEqual(view.notes, []);
  });

  it('says when money is not counted because a price is unknown', () => {
    const base = report();
    const view = buildMeterView(
      report({
        budgets: [],
        run: { ...base.run, costKnown: false, budget: null },
        models: [{ runId: RUN_ID, model: 'openai:my-finetune', calls: 2, inputTokens: 10, outputTokens: 10, usd: 0, unpricedCalls: 2 }],
      }),
      T0,
    );
    assert.equal(view.gauges.find((item) => item.key === 'usd')?.value, '≥$0.0105');
    assert.equal(view.gauges.find((item) => item.key === 'usd')?.limit, null);
    assert.equal(view.models[0]?.usd, '$0+?');
    assert.match(view.notes[0] ?? '', /does not know the price of openai:my-finetune/);
  });

  it('adds input- and output-token gauges only for the limits a run has', () => {
    const base = report();
    const view = buildMeterView(report({ run: { ...base.run, budget: { outputTokens: 4000 } } }), T0);
    assert.deepEqual(view.gauges.map((item) => item.key), ['tokens', 'outputTokens', 'usd', 'steps', 'time']);
    assert.equal(view.gauges[1]?.value, '1.5k');
  });

  it('words the status bar, budget warnings and what the view reports it shows', () => {
    assert.equal(statusText(report()), '$(pulse) $0.0105 · 13.6k tok');
    assert.equal(statusText(report({ budgets: [], run: { ...report().run, costKnown: false } })), '$(pulse) ≥$0.0105 · 13.6k tok');
    assert.match(statusTooltip(report(), T0 + 11_000), /^Keel · lead · \w{6} · running\nTokens: 13.6k of 40k \(2k held\)\nMoney: \$0\.0105 of \$0\.01 \(\$0\.00066 held\)\n/);
    assert.equal(
      warningText({ type: 'budget_warning', runId: RUN_ID, budgetId: `run:${RUN_ID}`, dimension: 'usd', spent: 0.0041, limit: 0.005 }),
      "82% of the run's money budget of $0.005 is spent ($0.0041).",
    );
    assert.equal(
      warningText({ type: 'budget_warning', runId: RUN_ID, budgetId: 'pool:daily:2026-11-26', dimension: 'tokens', spent: 9000, limit: 10_000 }),
      "90% of the shared pool daily:2026-11-26's token budget of 10,000 tokens is spent (9,000 tokens).",
    );
    const shown = shownOf(buildMeterView(report(), T0 + 11_000), ['a warning']);
    assert.deepEqual(shown.gauges[1], { key: 'usd', value: '$0.0105', limit: '$0.01', held: '$0.00066', level: 'over' });
    assert.deepEqual([shown.held, shown.recent, shown.subRuns.length, shown.budgets, shown.warnings], [1, 1, 2, ['Shared pool · daily:2026-11-26'], ['a warning']]);
  });
});

describe('the forecast in the run prompt (src/extension/budget/spendText)', () => {
  const figures = (model: string, basedOn: number, costKnown = true): ModelForecast => ({
    model,
    basedOn,
    tokens: { p50: 1600, p95: 2040 },
    inputTokens: { p50: 1200, p95: 1500 },
    outputTokens: { p50: 400, p95: 540 },
    usd: { p50: 0.0012, p95: 0.003 },
    steps: { p50: 4, p95: 6 },
    activeMs: { p50: 2000, p95: 3000 },
    costKnown,
  });
  // As the runtime process answers the `forecast` request: with the sentence it words.
  const forecast = (models: ModelForecast[], apart: { failed?: number; budgetExceeded?: number } = {}, warnings: string[] = []): RunForecast => {
    const run = {
      agent: 'planner',
      model: 'openai:gpt-4o-mini',
      forecast: { agent: 'planner', models, failed: apart.failed ?? 0, budgetExceeded: apart.budgetExceeded ?? 0, cancelled: 0 },
      warnings,
    };
    return { ...run, sentence: forecastSentence(run) ?? null };
  };

  it("adds what earlier completed runs with the run's model cost to the question, and asks only the question without them", () => {
    assert.equal(runPrompt(null), RUN_PROMPT);
    assert.equal(runPrompt({ agent: 'planner', model: 'openai:gpt-4o-mini', forecast: null, sentence: null, warnings: [] }), RUN_PROMPT);
    assert.equal(
      runPrompt(forecast([figures('openai:gpt-4o-mini', 12)], { failed: 2, budgetExceeded: 1 })),
      'What should the agent do? Earlier completed runs with openai:gpt-4o-mini: typically $0.0012 and 1.6k tokens, 95% under $0.003 and 2k tokens (12 runs; not counted: 2 failed, 1 stopped at a budget).',
    );
    assert.equal(
      runPrompt(forecast([figures('openai:gpt-4o', 1, false)])),
      'What should the agent do? No completed run with openai:gpt-4o-mini yet; with openai:gpt-4o: typically $0.0012+ and 1.6k tokens, 95% under $0.003+ and 2k tokens (1 run).',
    );
    assert.equal(runPrompt(forecast([], { failed: 3 })), 'What should the agent do? No earlier run of planner completed (3 failed).');
  });

  it('warns under the input box when earlier runs spent more than the budget, and not otherwise', () => {
    assert.equal(runWarning(null), undefined);
    assert.equal(runWarning(forecast([figures('openai:gpt-4o-mini', 12)])), undefined);
    assert.equal(runWarning(forecast([figures('openai:gpt-4o-mini', 12)], {}, ['One.', 'Two.'])), 'One. Two.');
  });
});
