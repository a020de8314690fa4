import { readFileSync } from 'node:fs';
import { applyDeadlines, argsHash, type DecisionRequest } from '../../runtime/approval/decide';
import { approvalStats, type ApprovalCounts } from '../../runtime/approval/metrics';
import { currentUser } from '../../runtime/currentUser';
import { KeelError, describeError } from '../../runtime/errors';
import { formatDuration } from '../../shared/format';
import type { ApprovalRecord } from '../../runtime/store/checkpointStore';
import { approvalLine, pendingApproval } from '../render';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost, withStore } from '../shared';
import { follow, liveView, reportStopped, resumeRun } from './runCommands';
import { RESTATE_FLAGS } from '../engines';
import { rootRunOf } from '../../runtime/store/runTree';
import { isRestateOwned } from '../../runtime/engine/restate/naming';

/**
 * Commands for the decisions people make: list what waits, approve, reject, settle an unknown
 * outcome. Only these (and the editor) can decide; nothing an agent or a tool says can.
 */

async function list(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { all: { type: 'boolean' }, stats: { type: 'boolean' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError('keel approvals takes no arguments.');
  return withStore(values.db, async (store) => {
    const expired = await applyDeadlines(store, Date.now());
    const approvals = await store.listApprovals(values.all || values.stats ? {} : { status: 'pending' });
    if (values.stats) {
      const stats = approvalStats(approvals);
      out.write(values.json ? `${JSON.stringify(stats, null, 2)}\n` : `${statsTable(stats.overall, stats.byTool, stats.byAgent)}\n`);
      return 0;
    }
    if (values.json) {
      out.write(`${JSON.stringify(approvals, null, 2)}\n`);
      return 0;
    }
    for (const approval of expired.filter((candidate) => candidate.status !== 'pending')) {
      out.write(`${style.yellow(`${approval.id} expired and was rejected; continue its run with: keel resume ${approval.runId}`)}\n`);
    }
    if (approvals.length === 0) out.write(values.all ? 'No approvals yet.\n' : 'Nothing is waiting for a decision.\n');
    for (const approval of approvals) {
      out.write(`${approval.status === 'pending' ? pendingApproval(approval, style, await rootRunOf(store, approval.runId).catch(() => undefined)) : approvalLine(approval, style)}\n`);
    }
    return 0;
  });
}

async function approve(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { args: { type: 'string' }, 'no-resume': { type: 'boolean' }, json: { type: 'boolean' }, ...RESTATE_FLAGS });
  const id = onlyId(positionals, 'keel approve <approvalId> [--args edited.json]');
  return decideAndResume(values, id, (approval) => {
    if (values.args === undefined) return { action: 'approve', argsHash: approval.argsHash };
    let edited: unknown;
    try {
      edited = JSON.parse(readFileSync(values.args, 'utf8')) as unknown;
    } catch (error) {
      throw new UsageError(`--args needs a file holding the arguments to approve, as JSON (${describeError(error)}).`);
    }
    return { action: 'approve', argsHash: argsHash(edited), args: edited };
  });
}

async function reject(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { reason: { type: 'string' }, 'no-resume': { type: 'boolean' }, json: { type: 'boolean' }, ...RESTATE_FLAGS });
  const id = onlyId(positionals, 'keel reject <approvalId> --reason <text>');
  if (!values.reason?.trim()) throw new UsageError('keel reject needs --reason <text>: the model reads it.');
  const reason = values.reason;
  return decideAndResume(values, id, () => ({ action: 'reject', reason }));
}

async function resolve(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    retry: { type: 'boolean' },
    done: { type: 'string' },
    fail: { type: 'string' },
    'no-resume': { type: 'boolean' },
    json: { type: 'boolean' },
    ...RESTATE_FLAGS,
  });
  const chosen = [values.retry === true, values.done !== undefined, values.fail !== undefined].filter(Boolean).length;
  const [id, ...extra] = positionals;
  if (!id || extra.length > 0 || chosen !== 1) {
    throw new UsageError("keel resolve takes an approval id and one decision: --retry, --done '<result as JSON>' or --fail '<reason>'.");
  }
  return decideAndResume(values, id, (approval): DecisionRequest => {
    if (values.done !== undefined) {
      try {
        return { action: 'done', result: JSON.parse(values.done) as unknown };
      } catch (error) {
        throw new UsageError(`--done needs the tool's result as JSON (${describeError(error)}).`);
      }
    }
    if (values.fail !== undefined) return { action: 'reject', reason: values.fail };
    return { action: 'approve', argsHash: approval.argsHash };
  });
}

/**
 * Records a decision and, unless `--no-resume`, continues the run's tree by the one rule and
 * follows it. A run Restate executes is told through Restate (it goes on there, `--no-resume` or
 * not); a local one goes on here.
 */
async function decideAndResume(
  flags: { db?: string | undefined; 'no-resume'?: boolean | undefined; json?: boolean | undefined; 'restate-url'?: string | undefined; 'restate-admin'?: string | undefined },
  id: string,
  request: (approval: ApprovalRecord) => DecisionRequest,
): Promise<number> {
  const json = flags.json === true;
  return withHost(flags, async (host) => {
    const { store } = host;
    await applyDeadlines(store, Date.now());
    const approval = await store.getApproval(id);
    if (!approval) throw new KeelError(`There is no approval ${id}; \`keel approvals\` lists the pending ones.`);
    const meta = { by: currentUser(), via: 'cli', at: Date.now() } as const;
    const root = await rootRunOf(store, approval.runId);
    if (isRestateOwned(root)) {
      const decided = await host.restate.decide(id, request(approval), meta);
      if (!json) out.write(`${approvalLine(decided.approval, style)}\n`);
      return flags['no-resume'] === true ? 0 : resumeRun(host, root.id, json, meta.at);
    }
    const resume = flags['no-resume'] !== true;
    const decided = await host.local.decide(id, request(approval), meta, { continue: resume, ...(json ? {} : { onEvent: liveView() }) });
    if (!json) out.write(`${approvalLine(decided.approval, style)}\n`);
    if (!resume) return 0;
    if (decided.continued) return follow(host, decided.continued, json);
    const now = (await store.getRun(root.id)) ?? root;
    if (!json && now.state === 'waiting_approval') out.write(`${style.dim(`Run ${now.id} goes on once these are decided too:`)}\n`);
    return reportStopped(host, now, json);
  });
}

function onlyId(positionals: readonly string[], usage: string): string {
  const [id, ...extra] = positionals;
  if (!id || extra.length > 0) throw new UsageError(`Usage: ${usage}`);
  return id;
}

function statsTable(
  overall: ApprovalCounts,
  byTool: Readonly<Record<string, ApprovalCounts>>,
  byAgent: Readonly<Record<string, ApprovalCounts>>,
): string {
  const header = ['', 'requested', 'approved', 'rejected', 'edited', 'expired', 'pending', 'rate', 'p50', 'p95'];
  const row = (name: string, counts: ApprovalCounts) => [
    name,
    String(counts.requested),
    String(counts.approved),
    String(counts.rejected),
    String(counts.edited),
    String(counts.expired),
    String(counts.pending),
    counts.approvalRate === null ? '-' : `${Math.round(counts.approvalRate * 100)}%`,
    counts.latencyP50Ms === null ? '-' : formatDuration(counts.latencyP50Ms),
    counts.latencyP95Ms === null ? '-' : formatDuration(counts.latencyP95Ms),
  ];
  const rows = [
    row('all', overall),
    ...Object.entries(byTool).map(([tool, counts]) => row(`tool ${tool}`, counts)),
    ...Object.entries(byAgent).map(([agent, counts]) => row(`agent ${agent}`, counts)),
  ];
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((cells) => (cells[column] ?? '').length)));
  const render = (cells: readonly string[]) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [style.dim(render(header)), ...rows.map(render)].join('\n');
}

export const approvalCommands: Readonly<Record<string, Command>> = {
  approvals: { usage: ['keel approvals [--all] [--stats] [--json]'], run: list },
  approve: { usage: ['keel approve <approvalId> [--args edited.json] [--no-resume]'], run: approve },
  reject: { usage: ['keel reject <approvalId> --reason <text> [--no-resume]'], run: reject },
  resolve: { usage: ["keel resolve <approvalId> (--retry | --done '<result JSON>' | --fail '<reason>') [--no-resume]"], run: resolve },
};
