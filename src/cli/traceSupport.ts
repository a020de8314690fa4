import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { agentFacts, type AgentFacts } from '../runtime/trace/agentFacts';
import type { AuditCall, AuditDecision } from '../runtime/trace/audit';
import type { DetectedFlag } from '../runtime/trace/detectors';
import { compactArgs, truncate } from '../shared/format';
import type { Style } from './style';

/** What the trace commands share: agent facts and text views. */

/** What the run recorded of its agent (required tools, instructions), for its trace. */
export async function factsForRun(store: CheckpointStore, runId: string): Promise<AgentFacts> {
  const run = await store.getRun(runId);
  return run ? agentFacts(run) : {};
}

/** `⚑ step 4 repeated_call: ...`, one line per flag, errors in red. */
export function flagLines(flags: readonly DetectedFlag[], style: Style): string[] {
  return flags.map((flag) => {
    const where = flag.seq === null ? 'run' : `step ${flag.seq}`;
    const paint = flag.severity === 'error' ? style.red : style.yellow;
    return `  ${paint(`⚑ ${where} ${flag.kind}`)}: ${flag.message}`;
  });
}

/** One decision of the audit log, in a few lines. */
export function auditLines(decision: AuditDecision, style: Style): string[] {
  const head = `${style.bold(decision.runId)} ${decision.agent} ${style.dim(`step ${decision.seq} · ${new Date(decision.at).toISOString()} · ${decision.model}`)}`;
  const lines = [head, `  ${style.dim('offered ')} ${decision.offered.length > 0 ? decision.offered.join(', ') : '(no tools)'}`];
  if (decision.kind === 'answer') {
    lines.push(`  ${style.dim('answered')} ${JSON.stringify(truncate(decision.answer ?? '', 160))}`);
  }
  for (const call of decision.calls) lines.push(`  ${style.dim('selected')} ${callLine(call, style)}`);
  if (decision.reasoning !== null) lines.push(`  ${style.dim('reasoning')} ${JSON.stringify(truncate(decision.reasoning, 200))}`);
  const confidence = decision.confidence ?? decision.calls.find((call) => call.confidence !== null)?.confidence ?? null;
  if (confidence !== null) lines.push(`  ${style.dim('confidence')} ${String(confidence)}`);
  return lines;
}

function callLine(call: AuditCall, style: Style): string {
  let args = call.arguments;
  try {
    args = compactArgs(JSON.parse(call.arguments) as unknown);
  } catch {
    // Invalid JSON: shown as the model wrote it.
  }
  const outcome =
    call.outcome === 'ok'
      ? style.green('ok')
      : call.outcome === 'error'
        ? style.red(`error: ${truncate(call.error ?? '', 100)}`)
        : style.yellow(call.outcome === 'in_progress' ? 'in progress' : 'not run');
  const approvals = call.approvals.map(
    (approval) => ` · approval ${approval.decision ?? approval.status}${approval.decidedBy ? ` by ${approval.decidedBy}` : ''}`,
  );
  return `${call.tool}(${truncate(args, 100)}) → ${outcome}${approvals.join('')}`;
}
