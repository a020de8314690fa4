import { comparisonKey, type ComparisonProtocol } from '../../src/protocol/webview';
import { formatAgo } from '../../src/shared/format';
import type { ComparedRun, ComparedStep, ComparisonRow, Difference, RunComparison } from '../../src/shared/runComparison';
import { RUN_STATE_LABELS } from '../../src/shared/runText';
import { element } from '../shared/dom';
import { Host } from '../shared/host';

const root = document.getElementById('root') as HTMLElement;

const host = new Host<ComparisonProtocol>((message) => {
  switch (message.type) {
    case 'comparison':
      host.save({ runId: comparisonKey(message.comparison.a.id, message.comparison.b.id) });
      render(message.comparison);
      document.querySelector('.row.first')?.scrollIntoView({ block: 'center' });
      return;
    case 'error':
      root.replaceChildren(element('p', { className: 'error' }, message.message));
      return;
  }
});

host.ready();

function render(comparison: RunComparison): void {
  const { a, b, first } = comparison;
  const banner = first
    ? element('p', { className: 'first-difference', role: 'status' }, element('strong', {}, 'First difference: '), first.text)
    : element('p', { className: 'same', role: 'status' }, 'The runs took the same steps with the same results and ended the same way.');
  const table = element('div', { className: 'rows', role: 'table', ariaLabel: 'Steps of run A and run B' },
    element('div', { className: 'row head', role: 'row' }, runHead('A', a), element('span', { className: 'mark' }), runHead('B', b)),
  );
  comparison.rows.forEach((row, index) => table.append(...rowElements(row, a, b, index === first?.row)));
  const whole = [comparison.input, comparison.outcome].filter((difference): difference is Difference => difference !== null);
  const ends = element('section', { className: `ends${comparison.outcome ? ' differs' : ''}${first?.difference === comparison.outcome || first?.difference === comparison.input ? ' first' : ''}` },
    element('h2', {}, 'How they ended'),
    ...(whole.length > 0 ? whole.map(differenceElement) : [element('p', {}, `Both ${RUN_STATE_LABELS[a.state]}, with the same result.`)]),
  );
  root.replaceChildren(banner, table, ends);
}

function runHead(label: string, run: ComparedRun): HTMLElement {
  return element('div', { className: 'run', role: 'columnheader' },
    element('h1', {}, `${label} · ${run.agent}`, element('span', { className: `badge ${run.state}` }, RUN_STATE_LABELS[run.state])),
    element('p', { className: 'id' }, `${run.id} · ${run.model} · ${run.stepCount} step${run.stepCount === 1 ? '' : 's'} · started ${formatAgo(Date.now() - run.createdAt)}`),
    element('p', { className: 'input' }, run.input),
  );
}

/** A row of the two runs' steps, and under it what differs between them. */
function rowElements(row: ComparisonRow, a: ComparedRun, b: ComparedRun, first: boolean): HTMLElement[] {
  const differs = row.differences.length > 0;
  const mark = row.a === null ? '+' : row.b === null ? '−' : differs ? '≠' : '=';
  const line = element('div', { className: `row${differs ? ' differs' : ''}${first ? ' first' : ''}`, role: 'row' },
    stepCell(row.a, a.id),
    element('span', { className: 'mark', title: differs ? row.differences.map((difference) => difference.aspect).join(', ') : 'the same' }, mark),
    stepCell(row.b, b.id),
  );
  if (!differs || row.a === null || row.b === null) return [line];
  return [line, element('div', { className: `details${first ? ' first' : ''}` }, ...row.differences.map(differenceElement))];
}

function stepCell(step: ComparedStep | null, runId: string): HTMLElement {
  if (!step) return element('div', { className: 'step gap', role: 'cell' }, 'no such step');
  const seq = element('a', { href: '#', className: 'seq', title: `Open step ${step.seq} in the Run view` }, String(step.seq));
  seq.addEventListener('click', (event) => {
    event.preventDefault();
    host.post({ type: 'openStep', runId, seq: step.seq });
  });
  return element('div', { className: `step ${step.kind} ${step.status}`, role: 'cell' },
    seq,
    element('span', { className: 'kind' }, step.kind === 'tool' ? step.name : 'model'),
    element('span', { className: 'summary', title: step.summary }, step.summary),
  );
}

function differenceElement(difference: Difference): HTMLElement {
  return element('div', { className: 'difference' },
    element('h3', {}, difference.aspect),
    element('pre', { className: 'a' }, difference.a ?? '(none)'),
    element('pre', { className: 'b' }, difference.b ?? '(none)'),
  );
}
