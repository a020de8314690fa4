import { formatDuration } from '../shared/format';
import type { AssertionResult } from '../runtime/golden/assertions';
import type { CaseReport, CaseRun, GoldenFileReport, GoldenMode, GoldenSummary } from '../runtime/golden/runGolden';
import type { Style } from './style';

/** The reports of `keel test`: spec (for people), JSON and JUnit XML (for machines). Pure functions. */

export type ReporterName = 'spec' | 'json' | 'junit';
export const REPORTERS: readonly ReporterName[] = ['spec', 'json', 'junit'];

export function summaryLine(summary: GoldenSummary): string {
  const extra = [summary.flaky > 0 ? `${summary.flaky} flaky` : '', summary.errors > 0 ? `${summary.errors} could not run` : ''].filter((part) => part !== '');
  return `${summary.passed} passed, ${summary.failed} failed${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
}

/** The header of a file in the spec report. */
export function specFileHeader(report: Pick<GoldenFileReport, 'shownAs'>, mode: GoldenMode, style: Style): string {
  const how = mode === 'replay' ? 'cassette' : mode === 'live' ? 'live' : 'recording';
  return `${style.bold(report.shownAs)} ${style.dim(`(${how})`)}`;
}

/** A file that could not be used at all. */
export function specFileError(report: GoldenFileReport, style: Style): string[] {
  return [`  ${style.red('✗')} ${style.red(report.error?.message ?? 'could not be used')}`];
}

/** One case in the spec report: a line, then what failed, with expected and actual. */
export function specCase(report: CaseReport, style: Style, options: { readonly db?: string } = {}): string[] {
  const runs = report.runs.length;
  const rate = runs > 1 ? ` ${report.passed}/${runs} passed${report.flaky ? ' (flaky)' : ''}` : '';
  const time = runs === 0 ? '' : style.dim(` ${formatDuration(report.runs.reduce((sum, run) => sum + run.durationMs, 0) / runs)}`);
  const mark = report.status === 'passed' ? style.green('✓') : report.flaky ? style.yellow('~') : report.status === 'error' ? style.red('!') : style.red('✗');
  const lines = [`  ${mark} ${report.name} ${style.dim(`[${report.tags.join(', ')}]`)}${rate}${time}`];
  // The first run that did not pass tells what went wrong.
  const failing = report.runs.find((run) => run.status !== 'passed');
  if (failing) lines.push(...specRun(failing, style, options));
  return lines;
}

function specRun(run: CaseRun, style: Style, options: { readonly db?: string }): string[] {
  const lines: string[] = [];
  if (run.mismatch) lines.push(...indent(run.mismatch, 6).map((line, index) => (index === 0 ? style.red(line) : line)));
  else if (run.error) lines.push(style.red(`      ${run.error}`));
  for (const assertion of run.assertions.filter((candidate) => !candidate.passed)) lines.push(...specAssertion(assertion, style));
  if (run.runId && options.db) lines.push(style.dim(`      run ${run.runId}: keel show ${run.runId} --db ${options.db}`));
  return lines;
}

function specAssertion(assertion: AssertionResult, style: Style): string[] {
  const lines = [`      ${style.red('✗')} ${assertion.kind}: ${assertion.message}`];
  if (assertion.expected !== undefined && assertion.actual !== undefined) {
    lines.push(...prefixed(style.green('- expected: '), assertion.expected), ...prefixed(style.red('+ actual:   '), assertion.actual));
  }
  return lines;
}

function prefixed(prefix: string, text: string): string[] {
  return text.split('\n').map((line, index) => `          ${index === 0 ? prefix : ' '.repeat(12)}${line}`);
}

function indent(text: string, spaces: number): string[] {
  return text.split('\n').map((line) => `${' '.repeat(spaces)}${line}`);
}

export function jsonReport(reports: readonly GoldenFileReport[], summary: GoldenSummary, mode: GoldenMode): string {
  return `${JSON.stringify({ version: 1, mode, summary, files: reports }, null, 2)}\n`;
}

/** JUnit XML as CI servers read it: a suite per golden file, a test case per case. */
export function junitReport(reports: readonly GoldenFileReport[], summary: GoldenSummary): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = reports.reduce((sum, report) => sum + report.durationMs, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="keel golden tests" tests="${summary.passed + summary.failed}" failures="${summary.failed - summary.errors}" errors="${summary.errors}" time="${seconds(total)}">`,
  ];
  for (const report of reports) {
    const failures = report.cases.filter((goldenCase) => goldenCase.status === 'failed').length;
    const errors = report.cases.filter((goldenCase) => goldenCase.status === 'error').length + (report.error ? 1 : 0);
    const tests = report.cases.length + (report.error ? 1 : 0);
    lines.push(`  <testsuite name="${xml(report.shownAs)}" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds(report.durationMs)}" file="${xml(report.shownAs)}">`);
    if (report.error) {
      lines.push(`    <testcase name="(golden file)" classname="${xml(report.shownAs)}" time="0">`);
      lines.push(`      <error message="${xml(report.error.message)}" type="GoldenFileError">${xml(report.error.message)}</error>`);
      lines.push('    </testcase>');
    }
    for (const goldenCase of report.cases) {
      const time = goldenCase.runs.reduce((sum, run) => sum + run.durationMs, 0);
      lines.push(`    <testcase name="${xml(goldenCase.name)}" classname="${xml(report.shownAs)}" time="${seconds(time)}">`);
      const failing = goldenCase.runs.find((run) => run.status !== 'passed');
      if (failing) {
        const details = failureText(failing, goldenCase);
        const tag = goldenCase.status === 'error' ? 'error' : 'failure';
        lines.push(`      <${tag} message="${xml(details.split('\n')[0] ?? '')}" type="${goldenCase.status === 'error' ? 'GoldenCaseError' : 'AssertionError'}">${xml(details)}</${tag}>`);
      }
      const runIds = goldenCase.runs.map((run) => run.runId).filter((id): id is string => id !== null);
      const out = [`tags: ${goldenCase.tags.join(', ')}`, `passed ${goldenCase.passed} of ${goldenCase.runs.length} runs`, ...runIds.map((id) => `run ${id}`)];
      lines.push(`      <system-out>${xml(out.join('\n'))}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

function failureText(run: CaseRun, goldenCase: CaseReport): string {
  const parts: string[] = [];
  if (goldenCase.flaky) parts.push(`flaky: passed ${goldenCase.passed} of ${goldenCase.runs.length} runs`);
  if (run.mismatch) parts.push(run.mismatch);
  else if (run.error) parts.push(run.error);
  for (const assertion of run.assertions.filter((candidate) => !candidate.passed)) {
    parts.push(`${assertion.kind}: ${assertion.message}`);
    if (assertion.expected !== undefined && assertion.actual !== undefined) parts.push(`  expected: ${assertion.expected}`, `  actual:   ${assertion.actual}`);
  }
  return parts.join('\n');
}

/** Text safe in XML content and attributes: the five entities, and no characters XML 1.0 forbids. */
export function xml(text: string): string {
  return text
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
