import type { MeterProtocol } from '../../src/protocol/meter';
import type { SpendReport } from '../../src/protocol/spend';
import { element } from '../shared/dom';
import { Host } from '../shared/host';
import { addWarning, buildMeterView, shownOf, warningText, type GaugeView, type MeterView, type ReservationRowView } from './model/meterView';

const root = document.getElementById('root') as HTMLElement;
let report: SpendReport | undefined;
/** Warnings announced while the view was open: they are events, which a report does not repeat. */
let warnings: readonly string[] = [];
let lastShown = '';

const host = new Host<MeterProtocol>((message) => {
  switch (message.type) {
    case 'spend':
      // Another run's warnings are not this one's; after a reload, the saved ones are this run's.
      if (report && report.run.id !== message.report.run.id) warnings = [];
      report = message.report;
      break;
    case 'warning':
      warnings = addWarning(warnings, warningText(message.event));
      break;
    case 'error':
      root.replaceChildren(element('p', { className: 'error' }, message.message));
      return;
  }
  if (report) host.save({ runId: report.run.id, warnings });
  render();
});
warnings = host.saved()?.warnings ?? [];

// The active time of a running run grows between reports.
setInterval(() => {
  if (report?.run.state === 'running') render();
}, 1000);

host.ready();

function render(): void {
  if (!report) return;
  const view = buildMeterView(report, Date.now());
  root.replaceChildren(
    header(view),
    ...(warnings.length > 0 ? [element('ul', { className: 'warnings', role: 'status' }, ...warnings.map((text) => element('li', {}, text)))] : []),
    element('section', { className: 'gauges', ariaLabel: 'Spend of this run' }, ...view.gauges.map(gaugeElement)),
    ...view.notes.map((note) => element('p', { className: 'note' }, note)),
    ...(view.budgets.length > 0
      ? [
          element(
            'section',
            { className: 'budgets' },
            element('h2', {}, 'Budgets it also draws on'),
            ...view.budgets.map((budget) =>
              element(
                'div',
                { className: 'budget', dataset: { budget: budget.id } },
                element('h3', {}, budget.label),
                element('div', { className: 'gauges' }, ...budget.gauges.map(gaugeElement)),
              ),
            ),
          ),
        ]
      : []),
    modelsSection(view),
    reservationsSection(view),
    subRunsSection(view),
  );
  const shown = shownOf(view, warnings);
  const encoded = JSON.stringify(shown);
  if (encoded !== lastShown) {
    lastShown = encoded;
    host.post({ type: 'shown', shown });
  }
}

function header(view: MeterView): HTMLElement {
  return element(
    'header',
    {},
    element('h1', {}, `Budget · ${view.title}`),
    element('span', { className: `badge ${view.state}` }, view.state.replace('_', ' ')),
    ...(view.live ? [element('span', { className: 'live', title: 'Updates as the run goes' }, 'live')] : []),
  );
}

function gaugeElement(item: GaugeView): HTMLElement {
  const { gauge } = item;
  const bar = element('div', { className: 'bar', role: 'meter', ariaLabel: item.label, title: item.detail });
  if (gauge.share !== null) {
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    bar.setAttribute('aria-valuenow', String(Math.round(Math.min(gauge.share, 1) * 100)));
    const spent = element('div', { className: 'spent' });
    spent.style.width = percent(gauge.spentFraction);
    const reserved = element('div', { className: 'reserved', title: item.held ? `${item.held} held by calls in flight` : '' });
    reserved.style.left = percent(gauge.spentFraction);
    reserved.style.width = percent(gauge.reservedFraction);
    const warn = element('div', { className: 'warn-line', title: `Warning at ${Math.round((gauge.warnFraction ?? 0) * 100)}%` });
    warn.style.left = percent(gauge.warnFraction ?? 0);
    bar.append(spent, reserved, warn);
  } else {
    bar.classList.add('unlimited');
  }
  return element(
    'div',
    { className: `gauge ${gauge.level}`, dataset: { gauge: item.key } },
    element(
      'div',
      { className: 'gauge-head' },
      element('span', { className: 'label' }, item.label),
      element(
        'span',
        { className: 'figures' },
        element('span', { className: 'value' }, item.value),
        ...(item.limit === null ? [element('span', { className: 'limit none' }, 'no limit')] : [element('span', { className: 'limit' }, item.limit)]),
      ),
    ),
    bar,
    element(
      'div',
      { className: 'gauge-foot' },
      element('span', { className: 'share' }, item.share ?? ''),
      ...(item.held ? [element('span', { className: 'held' }, `${item.held} held`)] : []),
    ),
  );
}

function modelsSection(view: MeterView): HTMLElement {
  const section = element('section', { className: 'models' }, element('h2', {}, 'By model'));
  if (view.models.length === 0) {
    section.append(element('p', { className: 'empty' }, 'No model call has completed yet.'));
    return section;
  }
  const body = element(
    'tbody',
    {},
    ...view.models.map((row) => {
      const share = element('div', { className: 'share-bar' });
      share.style.width = percent(row.share);
      return element(
        'tr',
        { dataset: { model: row.model } },
        element('td', { className: 'model' }, row.model),
        element('td', { className: 'num' }, String(row.calls)),
        element('td', { className: 'num tokens', title: row.tokensDetail }, row.tokens),
        element('td', { className: 'num usd' }, row.usd),
        element('td', { className: 'share' }, element('div', { className: 'share-track' }, share), element('span', {}, row.shareText)),
      );
    }),
  );
  const total = element(
    'tfoot',
    {},
    element(
      'tr',
      {},
      element('td', {}, 'Total'),
      element('td', { className: 'num' }, String(view.modelTotal.calls)),
      element('td', { className: 'num tokens' }, view.modelTotal.tokens),
      element('td', { className: 'num usd' }, view.modelTotal.usd),
      element('td', {}),
    ),
  );
  const head = element('thead', {}, element('tr', {}, ...['Model', 'Calls', 'Tokens', 'Money', 'Share'].map((name) => element('th', {}, name))));
  section.append(element('table', {}, head, body, total));
  return section;
}

function reservationsSection(view: MeterView): HTMLElement {
  const section = element('section', { className: 'reservations' }, element('h2', {}, 'Reservations in flight'));
  section.append(
    view.held.length === 0
      ? element('p', { className: 'empty' }, 'No model call holds a reservation now.')
      : reservationTable(view.held, ['Run', 'Model', 'Holds', 'Held for'], (row) => [row.run, row.model, row.amount, row.age]),
  );
  if (view.recent.length > 0) {
    section.append(
      element('h3', {}, 'Recently closed'),
      reservationTable(view.recent, ['Run', 'Model', 'Held', 'Settled', 'Closed'], (row) => [row.run, row.model, row.amount, row.actual ?? '', row.age]),
    );
  }
  return section;
}

function reservationTable(rows: readonly ReservationRowView[], columns: readonly string[], cells: (row: ReservationRowView) => string[]): HTMLElement {
  return element(
    'table',
    {},
    element('thead', {}, element('tr', {}, ...columns.map((name) => element('th', {}, name)))),
    element(
      'tbody',
      {},
      ...rows.map((row) => element('tr', { className: row.status, title: row.id }, ...cells(row).map((text) => element('td', {}, text)))),
    ),
  );
}

function subRunsSection(view: MeterView): HTMLElement {
  const section = element('section', { className: 'subruns' }, element('h2', {}, 'Sub-agent runs'));
  if (view.subRuns.length === 0) {
    section.append(element('p', { className: 'empty' }, 'This run has started no sub-agent.'));
    return section;
  }
  const list = element('ul', {});
  for (const row of view.subRuns) {
    const link = element('a', { href: '#', title: `Show the budget of ${row.runId}` }, row.label);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      host.post({ type: 'selectRun', runId: row.runId });
    });
    const item = element(
      'li',
      { className: row.state, dataset: { run: row.runId } },
      link,
      element('span', { className: `badge ${row.state}` }, row.state.replace('_', ' ')),
      element('span', { className: 'num' }, `${row.tokens} tok`),
      element('span', { className: 'num' }, row.usd),
    );
    item.style.paddingInlineStart = `${(row.depth - 1) * 16}px`;
    list.append(item);
  }
  section.append(list);
  return section;
}

function percent(fraction: number): string {
  return `${(Math.min(1, Math.max(0, fraction)) * 100).toFixed(2)}%`;
}
