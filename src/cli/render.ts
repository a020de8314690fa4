import { formatAgo, formatDuration, formatTokensExact, formatUsd, truncate } from '../shared/format';
import type { ComparedRun, ComparedStep, Difference, RunComparison } from '../shared/runComparison';
import { RUN_STATE_LABELS, describeStep, runDuration, totalTokens } from '../shared/runText';
import type { RunEvent } from '../runtime/agent/events';
import type { RunForecast } from '../runtime/budget/forecast';
import type { FailedAttempt } from '../runtime/effects/retry';
import type { ApprovalRecord, RunRecord, RunState, StepRecord } from '../runtime/store/checkpointStore';
import type { Style } from './style';

/** Text views of runs for the terminal. Pure functions of their inputs, so they are easy to test. */

const STATE_MARK: Record<RunState, string> = {
  running: '…',
  interrupted: '↯',
  waiting_approval: '?',
  completed: '✓',
  failed: '✗',
  cancelled: '⊘',
  budget_exceeded: '$',
};

export function stateMark(state: RunState, style: Style): string {
  const mark = STATE_MARK[state];
  if (state === 'completed') return style.green(mark);
  if (state === 'running') return style.cyan(mark);
  if (state === 'interrupted' || state === 'waiting_approval') return style.yellow(mark);
  return style.red(mark);
}

export function runHeader(run: RunRecord, style: Style): string {
  return `${style.bold(run.agent)} ${style.dim(run.id)} ${style.dim(`· ${run.model}`)}`;
}

export function stepLine(step: StepRecord, style: Style): string {
  const duration = step.endedAt === null ? '' : style.dim(formatDuration(step.endedAt - step.startedAt));
  const kind = step.kind === 'model' ? style.cyan('model') : style.yellow('tool ');
  const text = describeStep(step, 90);
  const shown = step.status === 'failed' ? style.red(text) : text;
  return `  ${String(step.seq).padStart(3)} ${kind} ${shown} ${duration}`.trimEnd();
}


export function runSummary(run: RunRecord, style: Style): string {
  const facts = [
    `${RUN_STATE_LABELS[run.state]} after ${formatDuration(runDuration(run))}`,
    `${run.stepCount} steps`,
    `${totalTokens(run)} tokens`,
    `${formatUsd(run.costUsd)}${run.costKnown ? '' : '+ (a model without a known price ran)'}`,
  ].join(' · ');
  const paint = run.state === 'completed' ? style.green : run.state === 'waiting_approval' || run.state === 'interrupted' ? style.yellow : style.red;
  return `${stateMark(run.state, style)} ${paint(facts)}`;
}

/** What earlier runs of the agent cost, before a new one starts, and the budgets they say it will likely not fit. */
export function forecastLines(forecast: RunForecast, style: Style): string[] {
  const { sentence } = forecast;
  return [...(sentence ? [style.dim(`forecast: ${sentence}`)] : []), ...forecast.warnings.map((warning) => style.yellow(`warning: ${warning}`))];
}

/** A budget crossing its warning line. */
export function budgetWarningLine(event: Extract<RunEvent, { type: 'budget_warning' }>, style: Style): string {
  const format = event.dimension === 'usd' ? formatUsd : formatTokensExact;
  const share = Math.round((event.spent / event.limit) * 100);
  return style.yellow(`        budget ${event.budgetId}: ${share}% of its ${format(event.limit)} spent (${format(event.spent)})`);
}

/** A provider that reported more tokens than a call held: spent all the same, and maybe past a limit. */
export function overrunLine(event: Extract<RunEvent, { type: 'provider_overrun' }>, style: Style): string {
  const { reserved, reported } = event;
  const count = (n: number) => n.toLocaleString('en-US');
  const what =
    reported.outputTokens > reserved.outputTokens
      ? `${count(reported.outputTokens)} output tokens, over the ${count(reserved.outputTokens)} it was allowed`
      : `${count(reported.inputTokens)} input tokens, over the ${count(reserved.inputTokens)} Keel counted`;
  const over = event.overLimit.length > 0 ? `; now over its limit: ${event.overLimit.join(', ')}` : '';
  return style.red(`        ${event.model} reported ${what} (spent all the same${over})`);
}

/** A failed attempt of the step under way, and what Keel does next. */
export function retryLine(failure: FailedAttempt, style: Style): string {
  const next = failure.delayMs === undefined ? 'giving up' : `retrying in ${formatDuration(failure.delayMs)}`;
  return style.yellow(`        attempt ${failure.attempt} failed (${failure.reason}): ${truncate(failure.error, 80)}; ${next}`);
}

/** A decision a person must make, and the commands that make it. */
export function pendingApproval(approval: ApprovalRecord, style: Style, root?: RunRecord): string {
  const deadline = approval.deadline === null ? '' : ` · decide by ${new Date(approval.deadline).toISOString()}${approval.escalatedAt !== null && approval.escalateTo ? ` (escalated to ${approval.escalateTo})` : ''}`;
  return [
    style.yellow(`? ${approval.id}: ${approval.agent} wants to ${approval.tool}: ${truncate(approval.summary, 80)} (${approval.reason})${deadline}`),
    ...(root && root.id !== approval.runId ? [style.dim(`  sub-agent run ${approval.runId}, under run ${root.id} (${root.agent}), which waits for this decision`)] : []),
    `  ${approval.tool}(${truncate(JSON.stringify(approval.args), 100)})`,
    approval.kind === 'policy'
      ? `  keel approve ${approval.id} [--args edited.json]   |   keel reject ${approval.id} --reason '<why>'`
      : `  keel resolve ${approval.id} --retry | --done '<result as JSON>' | --fail '<reason>'`,
  ].join('\n');
}

/** A decided or expired approval in one line. */
export function approvalLine(approval: ApprovalRecord, style: Style): string {
  const decision = approval.decision;
  const what = !decision
    ? 'pending'
    : decision.action === 'approve'
      ? decision.args === undefined
        ? 'approved'
        : `approved with edited arguments ${truncate(JSON.stringify(decision.args), 60)}`
      : decision.action === 'reject' || decision.action === 'fail'
        ? `${approval.status === 'expired' ? 'expired and rejected' : decision.action === 'fail' ? 'failed' : 'rejected'}: ${decision.reason}`
        : decision.action === 'retry'
          ? 'to be retried with the same key'
          : 'marked done with a result';
  const who = approval.decidedBy ? ` by ${approval.decidedBy} (${approval.decidedVia ?? 'unknown'})` : '';
  const paint = decision?.action === 'approve' || decision?.action === 'retry' || decision?.action === 'done' ? style.green : style.red;
  return paint(`${approval.id}: ${approval.tool} ${what}${who}`);
}

export function runOutcome(run: RunRecord): string {
  if (run.state === 'completed') return run.result ?? '';
  return run.error ?? run.state;
}

export function runsTable(runs: readonly RunRecord[], style: Style, now: number = Date.now()): string {
  if (runs.length === 0) return 'No runs yet. Start one with: keel run <file.agent.ts> --input "..."';
  const rows = runs.map((run) => [
    `${stateMark(run.state, style)} ${run.id}`,
    run.agent,
    run.state,
    String(run.stepCount),
    formatDuration(runDuration(run, now)),
    formatAgo(now - run.createdAt),
    truncate(run.input, 40),
  ]);
  const header = ['  RUN', 'AGENT', 'STATE', 'STEPS', 'TIME', 'STARTED', 'INPUT'];
  const widths = header.map((title, column) =>
    Math.max(visibleLength(title), ...rows.map((row) => visibleLength(row[column] ?? ''))),
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => cell + ' '.repeat((widths[column] ?? 0) - visibleLength(cell))).join('  ').trimEnd();
  return [style.dim(line(header)), ...rows.map(line)].join('\n');
}

export function runDetail(run: RunRecord, steps: readonly StepRecord[], style: Style): string {
  const lines = [
    runHeader(run, style),
    `  ${style.dim('input')}  ${run.input}`,
    `  ${style.dim('file ')}  ${run.agentFile ?? '(none)'}`,
    `  ${style.dim('start')}  ${new Date(run.createdAt).toISOString()}`,
    '',
    ...steps.map((step) => stepLine(step, style)),
    '',
    runSummary(run, style),
    runOutcome(run),
  ];
  return lines.join('\n');
}

function visibleLength(text: string): number {
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/**
 * Two runs compared, for the terminal: each run in a line, then one line per aligned pair of steps
 * (`=` the same, `≠` different, `<` or `>` a step only one run took), each difference under its
 * row, and the first difference with both sides in full.
 */
export function comparisonText(comparison: RunComparison, style: Style): string {
  const runLine = (label: string, run: ComparedRun) =>
    `${style.bold(label)} ${run.id} ${style.dim(`${run.agent} · ${RUN_STATE_LABELS[run.state]} · ${run.stepCount} step${run.stepCount === 1 ? '' : 's'} · ${new Date(run.createdAt).toISOString()}`)}  ${truncate(JSON.stringify(run.input), 60)}`;
  const side = (step: ComparedStep | null) => (step ? `${String(step.seq).padStart(3)} ${truncate(step.summary, 44).padEnd(44)}` : `${'—'.padStart(3)} ${''.padEnd(44)}`);
  const lines = [runLine('A', comparison.a), runLine('B', comparison.b), ''];
  comparison.rows.forEach((row, index) => {
    const mark = row.a === null ? '>' : row.b === null ? '<' : row.differences.length > 0 ? '≠' : '=';
    const line = `${side(row.a)} ${mark} ${side(row.b)}`.trimEnd();
    lines.push(index === comparison.first?.row ? style.yellow(line) : row.differences.length > 0 ? line : style.dim(line));
    if (row.a && row.b) for (const difference of row.differences) lines.push(style.dim(`      ${difference.aspect}: ${differenceSides(difference, 60)}`));
  });
  lines.push('');
  const { first } = comparison;
  if (!first) {
    lines.push(style.green('The runs took the same steps with the same results and ended the same way.'));
    return lines.join('\n');
  }
  lines.push(`${style.bold('First difference')} ${first.text}`);
  lines.push(`  A ${first.difference.a ?? '(no such step)'}`, `  B ${first.difference.b ?? '(no such step)'}`);
  if (comparison.outcome && comparison.first?.difference !== comparison.outcome) lines.push(`${style.bold('Outcome')} ${differenceSides(comparison.outcome, 200)}`);
  return lines.join('\n');
}

function differenceSides(difference: Difference, max: number): string {
  const oneLine = (text: string | null) => truncate((text ?? '(none)').replace(/\s+/g, ' '), max);
  return `${oneLine(difference.a)} → ${oneLine(difference.b)}`;
}
