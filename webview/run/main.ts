import type { RunViewProtocol } from '../../src/protocol/webview';
import { clampedText } from '../shared/clamp';
import { element } from '../shared/dom';
import { Host } from '../shared/host';
import { applyEvent, outcome, runFacts, stepRows, type RunViewModel } from './model/runView';

const root = document.getElementById('root') as HTMLElement;
let model: RunViewModel | undefined;
const open = new Set<string>();
/** Long sections shown whole, by step and label; the others show their first lines. */
const expanded = new Set<string>();
/** The step asked for last (from a step's row in the Runs view), marked until another is. */
let focused: number | undefined;

const host = new Host<RunViewProtocol>((message) => {
  switch (message.type) {
    case 'run':
      model = { run: message.run, steps: message.steps };
      host.save({ runId: message.run.id });
      break;
    case 'event':
      if (!model) return;
      model = applyEvent(model, message.event);
      break;
    case 'focusStep':
      if (!model) return;
      focused = message.seq;
      open.add(`${model.run.id}:${message.seq}`);
      render();
      document.querySelector(`li[data-seq="${message.seq}"]`)?.scrollIntoView({ block: 'center' });
      return;
    case 'error':
      root.replaceChildren(element('p', { className: 'error' }, message.message));
      return;
  }
  render();
});

setInterval(() => {
  if (model?.run.state === 'running') render();
}, 1000);

host.ready();

function render(): void {
  if (!model) return;
  const { run, steps } = model;
  const header = element('header', {},
    element('h1', {}, run.agent, element('span', { className: `badge ${run.state}` }, run.state)),
    element('p', { className: 'input' }, run.input),
  );
  if (run.agentFile) {
    const file = run.agentFile;
    const link = element('a', { href: '#' }, file);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      host.post({ type: 'openAgentFile', file });
    });
    header.append(element('p', { className: 'file' }, link));
  }
  const facts = element('dl', { className: 'facts' });
  for (const fact of runFacts(run, Date.now())) facts.append(element('dt', {}, fact.label), element('dd', {}, fact.value));

  const list = element('ol', { className: 'steps' });
  for (const row of stepRows(steps)) {
    const details = element('details', { className: `step ${row.kind} ${row.status}` });
    details.open = open.has(row.key);
    details.addEventListener('toggle', () => (details.open ? open.add(row.key) : open.delete(row.key)));
    details.append(
      element('summary', {},
        element('span', { className: 'seq' }, String(row.seq)),
        element('span', { className: 'kind' }, row.title),
        ...(row.server === null ? [] : [element('span', { className: 'server', title: `A tool of the MCP server ${row.server}` }, `MCP ${row.server}`)]),
        element('span', { className: 'summary' }, row.summary),
        element('span', { className: 'duration' }, row.duration),
      ),
      ...row.sections.map((section) => element('section', {}, element('h3', {}, section.label), ...clampedText(`${row.key}/${section.label}`, section.text, expanded, render))),
    );
    list.append(element('li', { className: row.seq === focused ? 'focused' : '', dataset: { seq: String(row.seq) } }, details));
  }
  const end = outcome(run);
  root.replaceChildren(header, facts, list, element('div', { className: `outcome ${end.kind}` }, end.text));
}
