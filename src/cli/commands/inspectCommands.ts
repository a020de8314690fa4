import { isOwnerAlive } from '../../runtime/agent/owner';
import { KeelError } from '../../runtime/errors';
import { Host } from '../../runtime/host/host';
import { examineSqliteDatabase, type Finding } from '../../runtime/store/doctor';
import { isPostgresUrl, redactConnectionString } from '../../runtime/store/storeLocation';
import { buildTrace, traceFlags } from '../../runtime/trace/buildTrace';
import { flagsOfSpans } from '../../runtime/trace/runFlags';
import { compareRuns } from '../../shared/runComparison';
import { comparisonText, pendingApproval, runDetail } from '../render';
import { runMemorySection } from './memoryCommands';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';
import { factsForRun, flagLines } from '../traceSupport';

/** Commands that read what was recorded. */

async function show(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [prefix, ...extra] = positionals;
  if (!prefix || extra.length > 0) throw new UsageError('keel show takes one run id: keel show <runId>');
  return withHost(values, async (host) => {
    const { store } = host;
    await store.markInterrupted(isOwnerAlive, Date.now());
    const runId = await store.resolveRunId(prefix);
    const record = await store.getRun(runId);
    if (!record) throw new KeelError(`No run ${runId}.`);
    const steps = await store.getSteps(runId);
    const approvals = await store.listApprovals({ runId });
    const effects = await store.getEffects(runId);
    // What show prints is the journal itself, so flags may quote it; secrets are redacted throughout.
    const { redactor } = host.trace;
    const memory = await runMemorySection(store, record);
    const spans = buildTrace(
      { run: record, steps, approvals, effects, memoryOps: memory.json.memoryOps },
      { ...(await factsForRun(store, runId)), captureContent: true, redactor },
    );
    if (values.json) {
      out.write(`${JSON.stringify(redactor.redactValue({ run: record, steps, effects, approvals, flags: traceFlags(spans), ...memory.json }), null, 2)}\n`);
    } else {
      out.write(`${redactor.redact(runDetail(record, steps, style))}\n`);
      if (memory.text !== '') out.write(`${redactor.redact(memory.text)}\n`);
      const flags = flagLines(flagsOfSpans(spans), style);
      if (flags.length > 0) out.write(`${style.bold('Flags')}\n${redactor.redact(flags.join('\n'))}\n`);
      for (const approval of approvals.filter((candidate) => candidate.status === 'pending')) {
        out.write(`${redactor.redact(pendingApproval(approval, style))}\n`);
      }
    }
    return 0;
  });
}

/** `keel diff <runA> <runB>`: two runs step by step and their first difference; exit 0 when they do not differ, 1 when they do. */
async function diff(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [first, second, ...extra] = positionals;
  if (!first || !second || extra.length > 0) throw new UsageError('keel diff takes two run ids: keel diff <runA> <runB>');
  return withHost(values, async (host) => {
    const { store } = host;
    const journal = async (prefix: string) => {
      const runId = await store.resolveRunId(prefix);
      const run = await store.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId}.`);
      return { run, steps: await store.getSteps(runId) };
    };
    const a = await journal(first);
    const b = await journal(second);
    if (a.run.id === b.run.id) throw new UsageError(`Pick two different runs to compare (both are ${a.run.id}).`);
    const comparison = compareRuns(a, b);
    const { redactor } = host.trace;
    out.write(values.json ? `${JSON.stringify(redactor.redactValue(comparison), null, 2)}\n` : `${redactor.redact(comparisonText(comparison, style))}\n`);
    return comparison.first ? 1 : 0;
  });
}

/** Examines the run database and says what it found: exit 0 when nothing is wrong, 1 when something is. */
async function doctor(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError('keel doctor takes no arguments.');
  const config = await Host.configure({ cwd: process.cwd(), flags: values.db === undefined ? {} : { db: values.db } });
  const location = config.database;
  const findings: Finding[] = isPostgresUrl(location)
    ? [{ level: 'note', text: `${redactConnectionString(location)} is a PostgreSQL database: keel doctor examines SQLite files; PostgreSQL checks itself (see its amcheck module).` }]
    : examineSqliteDatabase(location);
  if (values.json) {
    out.write(`${JSON.stringify({ database: isPostgresUrl(location) ? redactConnectionString(location) : location, findings }, null, 2)}\n`);
  } else {
    out.write(`${style.bold(isPostgresUrl(location) ? redactConnectionString(location) : location)}\n`);
    const mark = { ok: style.green('✓'), note: style.dim('•'), problem: style.red('✗') } as const;
    for (const finding of findings) out.write(`${mark[finding.level]} ${finding.text}\n`);
  }
  return findings.some((finding) => finding.level === 'problem') ? 1 : 0;
}

export const inspectCommands: Readonly<Record<string, Command>> = {
  doctor: { usage: ['keel doctor [--json]   (check the run database in full and say what was found)'], run: doctor },
  show: { usage: ['keel show <runId> [--json]'], run: show },
  diff: { usage: ['keel diff <runA> <runB> [--json]   (two runs step by step and their first difference; exits 1 when they differ)'], run: diff },
};
