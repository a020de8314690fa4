import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Host } from '../../runtime/host/host';
import { KEEL_VERSION } from '../../runtime/version';
import { describeError } from '../../runtime/errors';
import { checkDrift, describeDrift, parseControlFile, type DriftReport } from '../../runtime/golden/drift';
import { DEFAULT_GOLDEN_GLOB, displayPath, findFiles } from '../../runtime/golden/findFiles';
import { CASE_TAGS, parseGoldenFile, type CaseTag } from '../../runtime/golden/goldenFile';
import { Judge, describeJudge, judgeModel } from '../../runtime/golden/judge';
import { runGoldenFile, summarize, type GoldenFileReport, type GoldenMode } from '../../runtime/golden/runGolden';
import { openRunDatabase } from '../../runtime/store/openStore';
import { normalizeStoreLocation } from '../../runtime/store/storeLocation';
import { REPORTERS, jsonReport, junitReport, specCase, specFileError, specFileHeader, summaryLine, type ReporterName } from '../goldenReport';
import { UsageError, type Command } from '../command';
import { note, out, parse, style, withHost } from '../shared';
import { styleFor } from '../style';

/** Golden tests: run cases (keel test), record their cassettes (keel record), check the judge for drift (keel judge). */

async function test(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    live: { type: 'boolean' },
    model: { type: 'string' },
    repeat: { type: 'string' },
    reporter: { type: 'string' },
    case: { type: 'string', multiple: true },
    tag: { type: 'string', multiple: true },
    out: { type: 'string' },
  });
  const reporter = (values.reporter ?? 'spec') as ReporterName;
  if (!REPORTERS.includes(reporter)) throw new UsageError(`--reporter must be ${REPORTERS.join(', ')} (got "${values.reporter ?? ''}").`);
  const repeat = values.repeat === undefined ? 1 : Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new UsageError(`--repeat needs a whole number of at least 1 (got "${values.repeat ?? ''}").`);
  if (values.model !== undefined && values.live !== true) throw new UsageError('--model runs the cases against another model, which needs --live (cassettes replay what was recorded).');
  const mode: GoldenMode = values.live === true ? 'live' : 'replay';
  return runGolden({ positionals, mode, model: values.model, repeat, reporter, cases: values.case, tags: tagsOf(values.tag), db: values.db, out: values.out });
}

async function record(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    model: { type: 'string' },
    case: { type: 'string', multiple: true },
    tag: { type: 'string', multiple: true },
  });
  return runGolden({ positionals, mode: 'record', model: values.model, repeat: 1, reporter: 'spec', cases: values.case, tags: tagsOf(values.tag), db: values.db, out: undefined });
}

interface GoldenInvocation {
  readonly positionals: readonly string[];
  readonly mode: GoldenMode;
  readonly model: string | undefined;
  readonly repeat: number;
  readonly reporter: ReporterName;
  readonly cases: readonly string[] | undefined;
  readonly tags: readonly CaseTag[] | undefined;
  readonly db: string | undefined;
  readonly out: string | undefined;
}

async function runGolden(invocation: GoldenInvocation): Promise<number> {
  const cwd = process.cwd();
  const patterns = invocation.positionals.length > 0 ? invocation.positionals : [DEFAULT_GOLDEN_GLOB];
  const files = [...new Set(patterns.flatMap((pattern) => findFiles(pattern, cwd)))];
  if (files.length === 0) throw new UsageError(`No golden files match ${patterns.map((pattern) => JSON.stringify(pattern)).join(', ')}.`);
  if (invocation.cases && invocation.cases.length > 0) checkCaseNames(files, invocation.cases, cwd);

  const spec = invocation.reporter === 'spec' && invocation.out === undefined;
  // The summary goes to stdout unless a JSON or XML report does.
  const stream = spec || invocation.out !== undefined ? out : process.stderr;
  // Case runs go to --db, else to the configured golden.database, else to a throwaway store: test runs do not belong among the workspace's runs.
  const given = invocation.db === undefined ? undefined : await openRunDatabase(normalizeStoreLocation(invocation.db), '--db', note);
  // The project's configuration (prices, sandbox...) applies to the cases' runtimes; its run database does not.
  const host = await Host.open({ cwd, opens: 'golden', defaults: { goldenDatabase: ':memory:' }, ...(given ? { store: given } : {}), version: KEEL_VERSION, log: note });
  const { store } = host;
  // Recording and live runs ask the model --model names, else the configured one (keel.config.ts, KEEL_MODEL), else the agent's own.
  const model = invocation.model ?? (invocation.mode === 'replay' ? undefined : host.config.model);
  const db = invocation.db ?? (store.location === ':memory:' ? undefined : displayPath(store.location, cwd));
  const reports: GoldenFileReport[] = [];
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('Interrupted.'));
  process.once('SIGINT', onSigint);
  try {
    for (const file of files) {
      let header = false;
      const printHeader = (shownAs: string) => {
        if (!spec || header) return;
        header = true;
        out.write(`${specFileHeader({ shownAs }, invocation.mode, style)}\n`);
      };
      const report = await runGoldenFile(file, {
        store,
        mode: invocation.mode,
        ...(model === undefined ? {} : { model }),
        ...(host.config.runBudget ? { budget: host.config.runBudget } : {}),
        ...(invocation.cases ? { cases: invocation.cases } : {}),
        ...(invocation.tags ? { tags: invocation.tags } : {}),
        repeat: invocation.repeat,
        runtime: host.runtime,
        signal: controller.signal,
        display: (path) => displayPath(path, cwd),
        onEvent: (event) => {
          if (!spec) return;
          if (event.type === 'caseFinished') {
            printHeader(displayPath(event.file, cwd));
            out.write(`${specCase(event.report, style, db === undefined ? {} : { db }).join('\n')}\n`);
          } else if (event.type === 'fileFinished' && event.report.error) {
            printHeader(event.report.shownAs);
            out.write(`${specFileError(event.report, style).join('\n')}\n`);
          }
        },
      });
      reports.push(report);
      if (invocation.mode === 'record' && !report.error && report.cases.length > 0) {
        out.write(`${style.dim(`  recorded ${report.cases.length} case${report.cases.length === 1 ? '' : 's'} into ${displayPath(report.cassette, cwd)}`)}\n`);
      }
      if (controller.signal.aborted) break;
    }
  } finally {
    process.off('SIGINT', onSigint);
    await host.close();
    await given?.close();
  }

  const summary = summarize(reports);
  if (invocation.reporter !== 'spec' || invocation.out !== undefined) {
    const text = invocation.reporter === 'json' ? jsonReport(reports, summary, invocation.mode) : invocation.reporter === 'junit' ? junitReport(reports, summary) : jsonReport(reports, summary, invocation.mode);
    if (invocation.out === undefined) out.write(text);
    else {
      mkdirSync(dirname(invocation.out), { recursive: true });
      writeFileSync(invocation.out, text);
    }
  }
  writeCounts(summary);
  const line = summaryLine(summary);
  const streamStyle = styleFor(stream === out ? process.stdout : process.stderr);
  const paint = summary.failed > 0 ? streamStyle.red : streamStyle.green;
  stream.write(`${spec ? '\n' : ''}${paint(line)}\n`);
  if (controller.signal.aborted) return 130;
  if (invocation.mode === 'record') return summary.errors > 0 ? 1 : 0;
  return summary.failed > 0 ? 1 : 0;
}

/** Every --case must name a case of some file: a misspelt name would otherwise test nothing. */
function checkCaseNames(files: readonly string[], names: readonly string[], cwd: string): void {
  const known = new Set<string>();
  for (const file of files) {
    try {
      for (const goldenCase of parseGoldenFile(readFileSync(file, 'utf8'), file, displayPath(file, cwd)).cases) known.add(goldenCase.name);
    } catch {
      // A broken file is reported when it runs.
    }
  }
  const missing = names.filter((name) => !known.has(name));
  if (missing.length > 0) throw new UsageError(`No case is named ${missing.map((name) => JSON.stringify(name)).join(', ')} in ${files.map((file) => displayPath(file, cwd)).join(', ')}.`);
}

function tagsOf(values: readonly string[] | undefined): CaseTag[] | undefined {
  if (!values) return undefined;
  for (const tag of values) if (!(CASE_TAGS as readonly string[]).includes(tag)) throw new UsageError(`--tag must be one of ${CASE_TAGS.join(', ')} (got "${tag}").`);
  return values as CaseTag[];
}

/** The repository's test script adds up the counts every stage writes to KEEL_TEST_COUNTS. */
function writeCounts(summary: { passed: number; failed: number }): void {
  const target = process.env['KEEL_TEST_COUNTS'];
  if (!target) return;
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, JSON.stringify({ passed: summary.passed, failed: summary.failed, skipped: 0 }));
}

async function judge(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { drift: { type: 'boolean' }, json: { type: 'boolean' } });
  if (values.drift !== true) throw new UsageError('keel judge checks the judge for drift: keel judge --drift [judge-control.yaml]');
  const cwd = process.cwd();
  const files = [...new Set((positionals.length > 0 ? positionals : ['**/judge-control.yaml']).flatMap((pattern) => findFiles(pattern, cwd)))];
  if (files.length === 0) throw new UsageError('No judge control file found: name one, such as keel judge --drift examples/travel/judge-control.yaml');
  const reports: (DriftReport & { file: string })[] = [];
  let failed = false;
  for (const file of files) {
    const shownAs = displayPath(file, cwd);
    let report: DriftReport;
    try {
      const control = parseControlFile(readFileSync(file, 'utf8'), file, shownAs);
      report = await checkDrift(control, new Judge(control.judge, judgeModel(control.judge)));
    } catch (error) {
      failed = true;
      process.stderr.write(`${styleFor(process.stderr).red('keel:')} ${describeError(error)}\n`);
      continue;
    }
    reports.push({ ...report, file: shownAs });
    if (!values.json) {
      const [head = '', ...rest] = describeDrift(report);
      out.write(`${style.bold(shownAs)}\n  ${report.drifted ? style.red(head) : style.green(head)}\n${rest.map((line) => `  ${line}`).join('\n')}${rest.length > 0 ? '\n' : ''}`);
    }
  }
  if (values.json) out.write(`${JSON.stringify(reports, null, 2)}\n`);
  const drifted = reports.filter((report) => report.drifted);
  if (drifted.length > 0) await alertDrift(drifted, values.db);
  return failed || drifted.length > 0 ? 1 : 0;
}

/** Raises a judge_drift alert for each drifted judge, when keel.config.ts has a rule for them, and delivers it. */
async function alertDrift(reports: readonly (DriftReport & { file: string })[], db: string | undefined): Promise<void> {
  const config = await Host.configure({ cwd: process.cwd(), flags: { db } });
  if (!config.alerts.rules.some((rule) => rule.on === 'judge_drift')) return;
  await withHost({ db }, async (host) => {
    const day = new Date().toISOString().slice(0, 10);
    for (const report of reports) {
      const judge = describeJudge(report.judge);
      await host.alerts.raise('judge_drift', {
        key: `judge_drift:${report.file}:${judge}:${day}`,
        severity: 'error',
        title: `The judge drifted: ${judge} (${report.file})`,
        body: `${describeDrift(report).join('\n')}\nGolden verdicts by this judge cannot be trusted until the pin or the control sample is updated (npx keel judge --drift ${report.file}).`,
        facts: { file: report.file, judge: report.judge, agreement: report.agreement, minAgreement: report.minAgreement, identity: report.identity },
      });
    }
    await host.alerts.flush(10_000);
  });
}

export const goldenCommands: Readonly<Record<string, Command>> = {
  test: {
    usage: [
      'keel test [glob...] [--live [--model <spec>]] [--repeat <n>] [--reporter spec|json|junit] [--out <file>]',
      '          [--case <name>]... [--tag happy|edge|adversarial]...   (golden files, default **/*.golden.yaml)',
    ],
    run: test,
  },
  record: { usage: ['keel record [glob...] [--case <name>]... [--model <spec>]   (record cassettes from the real model)'], run: record },
  judge: { usage: ['keel judge --drift [judge-control.yaml] [--json]   (grade the control sample again; DRIFTED or OK)'], run: judge },
};
