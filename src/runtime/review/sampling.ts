import { sha256 } from '../hash/canonicalJson';
import { truncate } from '../../shared/format';
import type { CheckpointStore, RunRecord, StepRecord } from '../store/checkpointStore';
import type { SamplingRule } from './reviewConfig';
import { reviewsOf, type NewReview, type ReviewRecord } from './reviewStore';

/** What sampling knows of a tool call that ran. */
export type SampledCall = Pick<NewReview, 'runId' | 'seq' | 'agent' | 'tool' | 'effect' | 'args'>;

/**
 * Whether a call is sampled for review, and why: the first rule that matches it decides. A band of
 * `always` samples it whatever the rate; otherwise the rate does, by a hash of the run and step, so
 * that the same call is always sampled or always not, however often it is looked at.
 */
export function samplingReason(rules: readonly SamplingRule[], call: SampledCall): string | undefined {
  const rule = rules.find(
    (candidate) =>
      (candidate.tool === undefined ? call.effect !== 'none' : candidate.tool === call.tool) &&
      (candidate.agent === undefined || candidate.agent === '*' || candidate.agent === call.agent),
  );
  if (!rule) return undefined;
  for (const band of rule.always ?? []) {
    const value = numberAt(call.args, band.arg);
    if (value === undefined || (band.min !== undefined && value < band.min) || (band.max !== undefined && value > band.max)) continue;
    return `${band.arg} = ${value} is in the band always sampled (${band.min ?? '…'} to ${band.max ?? '…'})`;
  }
  const draw = Number.parseInt(sha256(`${call.runId}:${call.seq}`).slice(0, 13), 16) / 2 ** 52;
  return draw < rule.rate ? `sampled at the rate of ${formatRate(rule.rate)} for ${rule.tool ?? `${rule.agent ?? ''}'s calls`}` : undefined;
}

function formatRate(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

/** The number at a dotted path of a call's arguments (numbers written as strings count). */
export function numberAt(args: unknown, path: string): number | undefined {
  let value: unknown = args;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  return Number.isFinite(number) ? number : undefined;
}

/**
 * Queues the run's tool calls that ran without a person's approval and that the rules sample.
 * Calls queued before are left as they are, so a run looked at again (after a pause) queues only
 * what is new. Returns the reviews queued now.
 */
export async function sampleRun(
  store: CheckpointStore,
  run: RunRecord,
  rules: readonly SamplingRule[],
  options: { readonly now: number; readonly redact: <T>(value: T) => T },
): Promise<ReviewRecord[]> {
  if (rules.length === 0) return [];
  const asked = new Set((await store.listApprovals({ runId: run.id })).map((approval) => approval.seq));
  const effects = run.agentFacts?.toolEffects ?? {};
  const reviews: NewReview[] = [];
  for (const step of await store.getSteps(run.id)) {
    if (step.kind !== 'tool' || step.status !== 'completed' || asked.has(step.seq)) continue;
    const args = argumentsOf(step);
    const call: SampledCall = { runId: run.id, seq: step.seq, agent: run.agent, tool: step.name, effect: effects[step.name] ?? 'none', args };
    const reason = samplingReason(rules, call);
    if (reason === undefined) continue;
    const output = step.output as { content?: unknown } | null;
    reviews.push({
      id: `rev_${run.id.replace(/^run_/, '')}_${step.seq}`,
      runId: run.id,
      seq: step.seq,
      agent: run.agent,
      tool: step.name,
      effect: call.effect,
      args: options.redact(args),
      outcome: { ok: true, content: options.redact(truncate(typeof output?.content === 'string' ? output.content : JSON.stringify(output ?? null), 2000)) },
      reason,
      sampledAt: options.now,
    });
  }
  return reviews.length === 0 ? [] : reviewsOf(store).queue(reviews);
}

/** A tool step's arguments as the model wrote them, parsed when they are JSON. */
function argumentsOf(step: StepRecord): unknown {
  const input = step.input as { arguments?: unknown } | null;
  const written = input?.arguments;
  if (typeof written !== 'string') return written ?? null;
  try {
    return JSON.parse(written) as unknown;
  } catch {
    return written;
  }
}
