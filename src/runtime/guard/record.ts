import { TOOL_CHANNELS, type ToolChannel, type TrustedSource, type ValueAction } from './config';
import { fence, fenceId } from './fence';
import type { InjectionPattern, ScreenFinding } from './screen';
import { PATTERN_DESCRIPTIONS } from './screen';

/**
 * What the guard records in the journal, beside the step it concerns, so that resumes, replays and
 * traces see the same thing: a tool step's output carries its `channel` and `guard`; the model
 * step that ends a run carries `guard` when its answer was sanitized. Read back defensively: a
 * journal written before the guard existed has neither.
 */

/** A side-effecting call that carried values from untrusted content, and what became of it. */
export interface TaintDecision {
  readonly decision: Exclude<ValueAction, 'allow'>;
  /** `to came from untrusted content (document of read_email)`. */
  readonly reason: string;
  readonly arguments: readonly {
    readonly path: string;
    readonly channel: ToolChannel;
    readonly tool: string;
    readonly seq: number;
  }[];
}

/** The guard's record of one tool step. */
export interface ToolGuardRecord {
  /** Whether the model read the result fenced (decides how a resume rebuilds the conversation). */
  readonly fenced: boolean;
  /** What the injection screen found in the result. */
  readonly findings?: readonly ScreenFinding[];
  /** The taint decision on the call itself. */
  readonly taint?: TaintDecision;
  /** Set when the agent trusts the result (the user's own data, or a source the user named): its values may direct side effects. */
  readonly trusted?: TrustedSource;
}

/** The guard's fields of a tool step's output. */
export interface ToolResultGuard {
  readonly channel?: ToolChannel;
  readonly guard?: ToolGuardRecord;
}

/** A link or image taken out of an answer. */
export interface RemovedLink {
  readonly kind: 'image' | 'link' | 'autolink' | 'reference' | 'html';
  /** The host (and port) it pointed to; the scheme (`javascript`, `data`) for a link that is not to the web. */
  readonly host: string;
}

/** The guard's record of a final answer that was sanitized. */
export interface AnswerGuardRecord {
  /** The answer as the run returns it. */
  readonly answer: string;
  readonly removed: readonly RemovedLink[];
}

export function readToolResultGuard(output: unknown): ToolResultGuard {
  const record = asRecord(output);
  const channel = TOOL_CHANNELS.find((candidate) => candidate === record['channel']);
  const guard = asRecord(record['guard']);
  if (typeof guard['fenced'] !== 'boolean') return channel ? { channel } : {};
  const findings = Array.isArray(guard['findings']) ? guard['findings'].map(asRecord).filter(isFinding) : undefined;
  const taint = readTaint(guard['taint']);
  const trusted = guard['trusted'] === 'user' || guard['trusted'] === 'named' ? guard['trusted'] : undefined;
  return {
    ...(channel ? { channel } : {}),
    guard: { fenced: guard['fenced'], ...(findings && findings.length > 0 ? { findings } : {}), ...(taint ? { taint } : {}), ...(trusted ? { trusted } : {}) },
  };
}

export function readAnswerGuard(output: unknown): AnswerGuardRecord | undefined {
  const guard = asRecord(asRecord(output)['guard']);
  if (typeof guard['answer'] !== 'string' || !Array.isArray(guard['removed'])) return undefined;
  const removed = guard['removed']
    .map(asRecord)
    .filter((link) => typeof link['host'] === 'string' && typeof link['kind'] === 'string')
    .map((link) => ({ kind: link['kind'] as RemovedLink['kind'], host: link['host'] as string }));
  return { answer: guard['answer'], removed };
}

function readTaint(value: unknown): TaintDecision | undefined {
  const taint = asRecord(value);
  if ((taint['decision'] !== 'approve' && taint['decision'] !== 'refuse') || typeof taint['reason'] !== 'string') return undefined;
  const args = Array.isArray(taint['arguments']) ? taint['arguments'].map(asRecord) : [];
  return {
    decision: taint['decision'],
    reason: taint['reason'],
    arguments: args
      .filter((arg) => typeof arg['path'] === 'string' && typeof arg['tool'] === 'string')
      .map((arg) => ({
        path: arg['path'] as string,
        tool: arg['tool'] as string,
        channel: TOOL_CHANNELS.find((channel) => channel === arg['channel']) ?? 'tool_output',
        seq: typeof arg['seq'] === 'number' ? arg['seq'] : 0,
      })),
  };
}

function isFinding(value: Record<string, unknown>): value is Record<string, unknown> & ScreenFinding {
  return typeof value['pattern'] === 'string' && value['pattern'] in PATTERN_DESCRIPTIONS && typeof value['excerpt'] === 'string';
}

/** The screen's findings in words: `an instruction to call a tool; hidden text with instructions in it`. */
export function describeFindings(findings: readonly ScreenFinding[]): string[] {
  return findings.map((finding) => PATTERN_DESCRIPTIONS[finding.pattern as InjectionPattern]);
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * A tool result as the model reads it: fenced when the journal says it was, else as it is (a
 * Keel-made error, a journal from before the guard, or a run with the guard off).
 */
export function toolMessageContent(traceId: string, seq: number, tool: string, content: string, output: unknown, ok: boolean): string {
  const { channel, guard } = readToolResultGuard(output);
  if (!ok || !guard?.fenced) return content;
  return fence(content, { id: fenceId(traceId, seq), channel: channel ?? 'tool_output', tool, warnings: describeFindings(guard.findings ?? []) });
}

/** The guard's fields of a result, as a tool step's output records them (none for results the guard never saw). */
export function guardFields(result: ToolResultGuard): ToolResultGuard {
  return { ...(result.channel ? { channel: result.channel } : {}), ...(result.guard ? { guard: result.guard } : {}) };
}
