import { writeFileSync } from 'node:fs';
import { isOwnerAlive } from '../../runtime/agent/owner';
import { describeError, KeelError } from '../../runtime/errors';
import { auditRun, decisionsUsing, type AuditDecision } from '../../runtime/trace/audit';
import { loadTraceSource } from '../../runtime/trace/buildTrace';
import { exportSpans, otlpJson } from '../../runtime/trace/otlp';
import { runTrace } from '../../runtime/trace/traceSettings';
import { KEEL_VERSION } from '../../runtime/version';
import { auditLines, factsForRun } from '../traceSupport';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';

/** Commands that read a run as a trace: export it, and the audit log of its decisions. */

const FORMATS = ['otlp-json', 'jsonl'] as const;

async function exportTrace(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    format: { type: 'string' },
    out: { type: 'string' },
    endpoint: { type: 'string' },
    content: { type: 'boolean' },
  });
  const [prefix, ...extra] = positionals;
  if (!prefix || extra.length > 0) throw new UsageError('keel export takes one run id: keel export <runId> [--format otlp-json|jsonl]');
  const format = values.format ?? 'otlp-json';
  if (!FORMATS.some((known) => known === format)) throw new UsageError(`--format must be otlp-json or jsonl, not ${JSON.stringify(format)}.`);
  if (values.endpoint !== undefined && values.out !== undefined) throw new UsageError('Give --endpoint (send the trace) or --out (write it to a file), not both.');
  return withHost(values, async (host) => {
    const { store } = host;
    const settings = values.content === true ? { ...host.trace, captureContent: true } : host.trace;
    await store.markInterrupted(isOwnerAlive, Date.now());
    const runId = await store.resolveRunId(prefix);
    const spans = await runTrace(store, runId, settings, await factsForRun(store, runId));
    if (values.endpoint !== undefined) {
      // --endpoint is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: /v1/traces is added.
      const config = settings.otlp;
      if (!config) throw new UsageError('--endpoint needs a URL, such as http://localhost:4318.');
      await exportSpans(spans, config, { version: KEEL_VERSION });
      out.write(`${style.dim(`sent ${spans.length} spans of ${runId} to ${settings.redactor.redact(config.url)}`)}\n`);
      return 0;
    }
    const text =
      format === 'jsonl'
        ? spans.map((span) => `${JSON.stringify(span)}\n`).join('')
        : `${JSON.stringify(JSON.parse(otlpJson(spans, { version: KEEL_VERSION })) as unknown, null, 2)}\n`;
    // The spans are redacted already; this pass covers what the encoding added (resource attributes).
    const redacted = settings.redactor.redact(text);
    if (values.out === undefined) {
      out.write(redacted);
    } else {
      try {
        writeFileSync(values.out, redacted);
      } catch (error) {
        throw new KeelError(`Could not write ${values.out}: ${describeError(error)}`);
      }
    }
    return 0;
  });
}

async function audit(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { tool: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
  const [prefix, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError('keel audit takes at most one run id: keel audit [<runId>] [--tool <name>]');
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
  return withHost(values, async (host) => {
    const { store, trace: settings } = host;
    await store.markInterrupted(isOwnerAlive, Date.now());
    const runIds = prefix === undefined ? (await store.listRuns({ limit })).map((run) => run.id) : [await store.resolveRunId(prefix)];
    let decisions: AuditDecision[] = [];
    // Oldest run first, so the log reads in the order things happened.
    for (const runId of [...runIds].reverse()) decisions.push(...auditRun(await loadTraceSource(store, runId), settings.redactor));
    if (values.tool !== undefined) decisions = decisionsUsing(decisions, values.tool);
    if (values.json === true) {
      out.write(`${JSON.stringify(decisions, null, 2)}\n`);
    } else if (decisions.length === 0) {
      out.write(`${values.tool === undefined ? 'No decisions recorded.' : `No decision selected ${values.tool}.`}\n`);
    } else {
      out.write(`${decisions.map((decision) => auditLines(decision, style).join('\n')).join('\n\n')}\n`);
    }
    return 0;
  });
}

export const traceCommands: Readonly<Record<string, Command>> = {
  export: {
    usage: ['keel export <runId> [--format otlp-json|jsonl] [--out <file>] [--endpoint <base url>] [--content]'],
    run: exportTrace,
  },
  audit: { usage: ['keel audit [<runId>] [--tool <name>] [--limit <n>] [--json]'], run: audit },
};
