import type { BudgetWarningEvent } from '../../../src/protocol/events';
import type { MeterShown } from '../../../src/protocol/meter';
import type { SpendReport } from '../../../src/protocol/spend';
import type { Amounts, Budget, BudgetLimits, Reservation, Run, RunState } from '../../../src/protocol/records';
import { breakdown } from './breakdown';
import { formatDuration, formatShare, formatTokens, formatTokensExact, formatUsd, shortId } from '../../../src/shared/format';
import { gauge, type Gauge } from './gauge';

/** The budget meter's view model: what it shows of a spend report, as text and fractions. No DOM here. */

export type GaugeKey = 'tokens' | 'inputTokens' | 'outputTokens' | 'usd' | 'steps' | 'time';

export interface GaugeView {
  readonly key: GaugeKey;
  readonly label: string;
  /** What is spent (or used), as written. */
  readonly value: string;
  /** The limit, as written; null when there is none. */
  readonly limit: string | null;
  /** What calls in flight hold, as written; null when they hold nothing. */
  readonly held: string | null;
  /** Spent as a share of the limit (`42%`); null without a limit. */
  readonly share: string | null;
  /** A sentence with the exact figures and the warning line, for the tooltip. */
  readonly detail: string;
  readonly gauge: Gauge;
}

export interface BudgetView {
  readonly id: string;
  readonly label: string;
  readonly gauges: readonly GaugeView[];
}

export interface ModelRowView {
  readonly model: string;
  readonly calls: number;
  readonly tokens: string;
  readonly tokensDetail: string;
  readonly usd: string;
  readonly share: number;
  readonly shareText: string;
}

export interface ReservationRowView {
  readonly id: string;
  /** The run that made it: `agent · abc123`. */
  readonly run: string;
  readonly model: string;
  readonly status: Reservation['status'];
  /** What it holds (or held): tokens and money. */
  readonly amount: string;
  /** What was settled; null while held, `released` when the call failed. */
  readonly actual: string | null;
  /** How long it has been held, or how long ago it closed. */
  readonly age: string;
}

export interface SubRunRowView {
  readonly runId: string;
  readonly label: string;
  readonly state: RunState;
  /** 1 for a sub-agent of the run, 2 for one of those, and so on. */
  readonly depth: number;
  readonly tokens: string;
  readonly usd: string;
}

export interface MeterView {
  readonly runId: string;
  readonly title: string;
  readonly state: RunState;
  readonly live: boolean;
  readonly gauges: readonly GaugeView[];
  /** Budgets beyond the run's own that its calls draw on: the runs above it and shared pools. */
  readonly budgets: readonly BudgetView[];
  readonly models: readonly ModelRowView[];
  readonly modelTotal: { readonly calls: number; readonly tokens: string; readonly usd: string };
  readonly held: readonly ReservationRowView[];
  readonly recent: readonly ReservationRowView[];
  readonly subRuns: readonly SubRunRowView[];
  /** Sentences about money that is not counted (unknown prices), for a note under the gauges. */
  readonly notes: readonly string[];
}

/** Totals over a run and its sub-agent runs: tokens, money and what calls in flight hold. */
export interface SpendTotals {
  readonly tokens: number;
  readonly usd: number;
  readonly heldTokens: number;
  readonly heldUsd: number;
  /** False when a model without a known price ran: `usd` is then a lower bound. */
  readonly costKnown: boolean;
}

/**
 * What the run spent: from its own budget when it has one (the store's account, sub-agents
 * included), else summed over its run record and those of its sub-agent runs.
 */
export function spendTotals(report: SpendReport): SpendTotals {
  const tree = [report.run, ...report.subRuns];
  const own = report.budgets.find((budget) => budget.id === `run:${report.run.id}`);
  const held = sumAmounts(report.held.map((reservation) => reservation.amounts));
  const costKnown = tree.every((run) => run.costKnown);
  if (own) {
    return {
      tokens: own.spent.inputTokens + own.spent.outputTokens,
      usd: own.spent.usd,
      heldTokens: own.reserved.inputTokens + own.reserved.outputTokens,
      heldUsd: own.reserved.usd,
      costKnown,
    };
  }
  return {
    tokens: tree.reduce((total, run) => total + run.usage.inputTokens + run.usage.outputTokens, 0),
    usd: tree.reduce((total, run) => total + run.costUsd, 0),
    heldTokens: held.inputTokens + held.outputTokens,
    heldUsd: held.usd,
    costKnown,
  };
}

/** The run's time spent executing at `now`: what earlier executions counted plus the current one's. */
export function activeTime(report: SpendReport, now: number): number {
  return report.run.activeMs + (report.activeSince === null ? 0 : Math.max(0, now - report.activeSince));
}

export function buildMeterView(report: SpendReport, now: number): MeterView {
  const { run } = report;
  const limits: BudgetLimits = run.budget ?? {};
  const warnAt = limits.warnAt;
  const totals = spendTotals(report);
  const own = report.budgets.find((budget) => budget.id === `run:${run.id}`);
  const gauges: GaugeView[] = [
    tokenGauge('tokens', 'Tokens', totals.tokens, totals.heldTokens, limits.tokens, warnAt),
    ...(limits.inputTokens === undefined
      ? []
      : [tokenGauge('inputTokens', 'Input tokens', own?.spent.inputTokens ?? sumTree(report, 'inputTokens'), own?.reserved.inputTokens ?? 0, limits.inputTokens, warnAt)]),
    ...(limits.outputTokens === undefined
      ? []
      : [tokenGauge('outputTokens', 'Output tokens', own?.spent.outputTokens ?? sumTree(report, 'outputTokens'), own?.reserved.outputTokens ?? 0, limits.outputTokens, warnAt)]),
    moneyGauge('Money', totals.usd, totals.heldUsd, limits.usd, warnAt, totals.costKnown),
    countGauge('steps', 'Steps', run.stepCount, limits.steps, warnAt, (n) => `${n}`, (n) => `${n} step${n === 1 ? '' : 's'}`),
    countGauge('time', 'Active time', activeTime(report, now), limits.wallTimeMs, warnAt, formatDuration, formatDuration),
  ];

  const agents = new Map([run, ...report.subRuns].map((member) => [member.id, member.agent]));
  const runLabel = (runId: string) => `${agents.get(runId) ?? 'run'} · ${shortId(runId)}`;
  const models = breakdown(report.models);
  const notes: string[] = [];
  if (models.total.unpricedCalls > 0 || !totals.costKnown) {
    const unpriced = models.rows.filter((row) => row.unpricedCalls > 0).map((row) => row.model);
    notes.push(
      `Keel does not know the price of ${unpriced.length > 0 ? unpriced.join(', ') : 'every model used'}: the money shown leaves ${unpriced.length === 1 ? 'it' : 'them'} out. Add prices with the keel.prices setting.`,
    );
  }

  return {
    runId: run.id,
    title: `${run.agent} · ${shortId(run.id)}`,
    state: run.state,
    live: run.state === 'running',
    gauges,
    budgets: report.budgets.filter((budget) => budget !== own).map((budget) => budgetView(budget, report)),
    models: models.rows.map((row) => ({
      model: row.model,
      calls: row.calls,
      tokens: formatTokens(row.tokens),
      tokensDetail: `${formatTokensExact(row.inputTokens)} in, ${formatTokensExact(row.outputTokens)} out${row.runs > 1 ? ` over ${row.runs} runs` : ''}`,
      usd: row.unpricedCalls > 0 ? `${formatUsd(row.usd)}+?` : formatUsd(row.usd),
      share: row.share,
      shareText: formatShare(row.share),
    })),
    modelTotal: { calls: models.total.calls, tokens: formatTokens(models.total.tokens), usd: formatUsd(models.total.usd) },
    held: report.held.map((reservation) => reservationRow(reservation, runLabel, now)),
    recent: report.recent.map((reservation) => reservationRow(reservation, runLabel, now)),
    subRuns: subRunRows(run, report.subRuns),
    notes,
  };
}

/** The status bar's text for a run: `$(pulse) $0.0123 · 2.1k tok`. */
export function statusText(report: SpendReport): string {
  const totals = spendTotals(report);
  return `$(pulse) ${totals.costKnown ? '' : '≥'}${formatUsd(totals.usd)} · ${formatTokens(totals.tokens)} tok`;
}

/** The status bar's tooltip: the run, and its spend against its limits. */
export function statusTooltip(report: SpendReport, now: number): string {
  const view = buildMeterView(report, now);
  const lines = view.gauges.map((item) => `${item.label}: ${item.value}${item.limit ? ` of ${item.limit}` : ''}${item.held ? ` (${item.held} held)` : ''}`);
  return [`Keel · ${view.title} · ${report.run.state}`, ...lines, 'Click to open the budget meter.'].join('\n');
}

function tokenGauge(key: GaugeKey, label: string, spent: number, held: number, limit: number | undefined, warnAt: number | undefined): GaugeView {
  const measured = gauge({ spent, reserved: held, limit, ...(warnAt === undefined ? {} : { warnAt }) });
  return {
    key,
    label,
    value: formatTokens(spent),
    limit: limit === undefined ? null : formatTokens(limit),
    held: held > 0 ? formatTokens(held) : null,
    share: measured.share === null ? null : formatShare(measured.share),
    detail: detail(formatTokensExact(spent), held > 0 ? formatTokensExact(held) : null, limit === undefined ? null : formatTokensExact(limit), measured),
    gauge: measured,
  };
}

function moneyGauge(label: string, spent: number, held: number, limit: number | undefined, warnAt: number | undefined, known: boolean): GaugeView {
  const measured = gauge({ spent, reserved: held, limit, ...(warnAt === undefined ? {} : { warnAt }) });
  const value = `${known ? '' : '≥'}${formatUsd(spent)}`;
  return {
    key: 'usd',
    label,
    value,
    limit: limit === undefined ? null : formatUsd(limit),
    held: held > 0 ? formatUsd(held) : null,
    share: measured.share === null ? null : formatShare(measured.share),
    detail:
      detail(`${value} (${spent.toFixed(6)} USD)`, held > 0 ? formatUsd(held) : null, limit === undefined ? null : formatUsd(limit), measured) +
      (known ? '' : ' Some calls used a model without a known price, so the real spend is higher.'),
    gauge: measured,
  };
}

function countGauge(
  key: GaugeKey,
  label: string,
  used: number,
  limit: number | undefined,
  warnAt: number | undefined,
  short: (value: number) => string,
  long: (value: number) => string,
): GaugeView {
  const measured = gauge({ spent: used, reserved: 0, limit, ...(warnAt === undefined ? {} : { warnAt }) });
  return {
    key,
    label,
    value: short(used),
    limit: limit === undefined ? null : short(limit),
    held: null,
    share: measured.share === null ? null : formatShare(measured.share),
    detail: detail(long(used), null, limit === undefined ? null : long(limit), measured),
    gauge: measured,
  };
}

function detail(spent: string, held: string | null, limit: string | null, measured: Gauge): string {
  const parts = [`${spent} spent`];
  if (held) parts.push(`${held} held by calls in flight`);
  if (limit) parts.push(`limit ${limit}, warning at ${formatShare(measured.warnFraction ?? 0)}`);
  else parts.push('no limit');
  return `${parts.join('; ')}.`;
}

function budgetView(budget: Budget, report: SpendReport): BudgetView {
  const runId = budget.id.startsWith('run:') ? budget.id.slice('run:'.length) : undefined;
  const label = runId
    ? `${report.run.parentRunId === runId ? 'Parent' : 'Ancestor'} run · ${shortId(runId)}`
    : `Shared pool · ${budget.id.replace(/^pool:/, '')}`;
  const { limits, spent, reserved } = budget;
  const warnAt = limits.warnAt;
  const gauges: GaugeView[] = [];
  if (limits.usd !== undefined) gauges.push(moneyGauge('Money', spent.usd, reserved.usd, limits.usd, warnAt, true));
  if (limits.tokens !== undefined) {
    gauges.push(tokenGauge('tokens', 'Tokens', spent.inputTokens + spent.outputTokens, reserved.inputTokens + reserved.outputTokens, limits.tokens, warnAt));
  }
  if (limits.inputTokens !== undefined) gauges.push(tokenGauge('inputTokens', 'Input tokens', spent.inputTokens, reserved.inputTokens, limits.inputTokens, warnAt));
  if (limits.outputTokens !== undefined) gauges.push(tokenGauge('outputTokens', 'Output tokens', spent.outputTokens, reserved.outputTokens, limits.outputTokens, warnAt));
  return { id: budget.id, label, gauges };
}

function reservationRow(reservation: Reservation, runLabel: (runId: string) => string, now: number): ReservationRowView {
  const amounts = (value: Amounts) => `${formatTokens(value.inputTokens + value.outputTokens)} tok · ${formatUsd(value.usd)}`;
  const since = reservation.status === 'held' ? reservation.createdAt : (reservation.closedAt ?? reservation.createdAt);
  return {
    id: reservation.id,
    run: runLabel(reservation.runId),
    model: reservation.model,
    status: reservation.status,
    amount: amounts(reservation.amounts),
    actual: reservation.status === 'held' ? null : reservation.actual ? amounts(reservation.actual) : 'released',
    age: reservation.status === 'held' ? formatDuration(now - since) : `${formatDuration(now - since)} ago`,
  };
}

/** Sub-agent runs in tree order (each under its parent), with their depth below the run. */
function subRunRows(root: Run, subRuns: readonly Run[]): SubRunRowView[] {
  const children = new Map<string, Run[]>();
  for (const run of subRuns) {
    const siblings = children.get(run.parentRunId ?? '') ?? [];
    siblings.push(run);
    children.set(run.parentRunId ?? '', siblings);
  }
  const rows: SubRunRowView[] = [];
  const seen = new Set<string>();
  const visit = (parentId: string, depth: number) => {
    for (const run of children.get(parentId) ?? []) {
      if (seen.has(run.id)) continue;
      seen.add(run.id);
      rows.push({
        runId: run.id,
        label: `${run.agent} · ${shortId(run.id)}`,
        state: run.state,
        depth,
        tokens: formatTokens(run.usage.inputTokens + run.usage.outputTokens),
        usd: `${run.costKnown ? '' : '≥'}${formatUsd(run.costUsd)}`,
      });
      visit(run.id, depth + 1);
    }
  };
  visit(root.id, 1);
  return rows;
}

function sumAmounts(amounts: readonly Amounts[]): Amounts {
  return amounts.reduce(
    (total, value) => ({ inputTokens: total.inputTokens + value.inputTokens, outputTokens: total.outputTokens + value.outputTokens, usd: total.usd + value.usd }),
    { inputTokens: 0, outputTokens: 0, usd: 0 },
  );
}

function sumTree(report: SpendReport, key: 'inputTokens' | 'outputTokens'): number {
  return [report.run, ...report.subRuns].reduce((total, run) => total + run.usage[key], 0);
}

const DIMENSION_LABELS: Readonly<Record<BudgetWarningEvent['dimension'], string>> = {
  usd: 'money',
  tokens: 'token',
  inputTokens: 'input-token',
  outputTokens: 'output-token',
  steps: 'step',
  wallTimeMs: 'time',
};

/** A budget warning in a sentence: `82% of the run's money budget of $0.50 is spent ($0.41).` */
export function warningText(event: BudgetWarningEvent): string {
  const format = event.dimension === 'usd' ? formatUsd : event.dimension === 'wallTimeMs' ? formatDuration : formatTokensExact;
  const whose = event.budgetId === `run:${event.runId}` ? 'the run' : event.budgetId.startsWith('run:') ? `run ${shortId(event.budgetId)}` : `the shared pool ${event.budgetId.replace(/^pool:/, '')}`;
  const share = event.limit === 0 ? '100%' : formatShare(event.spent / event.limit);
  return `${share} of ${whose}'s ${DIMENSION_LABELS[event.dimension]} budget of ${format(event.limit)} is spent (${format(event.spent)}).`;
}

/** Adds a warning to those shown, once. */
export function addWarning(warnings: readonly string[], text: string): readonly string[] {
  return warnings.includes(text) ? warnings : [...warnings, text];
}

/** What the meter shows, as it reports it to the host. */
export function shownOf(view: MeterView, warnings: readonly string[]): MeterShown {
  return {
    runId: view.runId,
    title: view.title,
    state: view.state,
    gauges: view.gauges.map((item) => ({ key: item.key, value: item.value, limit: item.limit, held: item.held, level: item.gauge.level })),
    models: view.models.map((row) => ({ model: row.model, tokens: row.tokens, usd: row.usd })),
    budgets: view.budgets.map((budget) => budget.label),
    held: view.held.length,
    recent: view.recent.length,
    subRuns: view.subRuns.map((row) => row.label),
    warnings,
  };
}
