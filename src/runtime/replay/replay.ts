import type { Agent } from '../agent/define';
import type { StepInfo } from '../agent/inspector';
import { subAgentOf } from '../agent/subAgent';
import { KeelError, describeError } from '../errors';
import { RUN_STATE_LABELS } from '../format';
import type { Message, ModelResponse, ToolCall } from '../model/model';
import type { StepRecord } from '../store/checkpointStore';
import type { Recording } from './recording';
import { reexecuteRecording } from './recordingStore';
import { ReplayedRun, Timeline, type PositionEntry } from './timeline';

export interface ReplayOptions {
  /**
   * The agents to check the runs against, by name (see agentsOf). A run whose agent is not here
   * replays from its recording alone, and `unchecked` says why.
   */
  readonly agents?: ReadonlyMap<string, Agent>;
  /** Why there are no agents to check against, such as an agent file that no longer loads. */
  readonly unchecked?: string;
}

/**
 * Replays a recorded run and its sub-agent runs into a timeline of every step. Where the run's
 * agent is at hand, its code runs again through the runtime's own loop, exactly as a resume
 * replays a journal: every model response and tool result comes from the recording, no model or
 * tool is called, and the journal's checks (the conversation's hash, each call's tool and
 * arguments, where the run ends) find where the agent no longer matches what was recorded. The
 * replay stops there.
 */
export async function replayRecording(recording: Recording, options: ReplayOptions = {}): Promise<Timeline> {
  const timeline = new Timeline();
  await addRun(timeline, recording, null, options);
  return timeline;
}

/** The agent and every agent it reaches through agentTool(), by name. */
export function agentsOf(agent: Agent): Map<string, Agent> {
  const found = new Map<string, Agent>();
  const visit = (current: Agent): void => {
    if (found.has(current.name)) return;
    found.set(current.name, current);
    for (const tool of current.tools.values()) {
      const sub = subAgentOf(tool);
      if (sub) visit(sub);
    }
  };
  visit(agent);
  return found;
}

interface Played {
  readonly entries: readonly (PositionEntry & { readonly divergence?: string })[];
  readonly messages: readonly Message[];
  readonly outcome: string;
}

async function addRun(timeline: Timeline, recording: Recording, parent: ReplayedRun['parent'], options: ReplayOptions): Promise<void> {
  const agent = options.agents?.get(recording.run.agent);
  let unchecked: string | null = null;
  let played: Played | undefined;
  if (agent) {
    const reexecuted = await reexecute(recording, agent);
    if ('unchecked' in reexecuted) unchecked = reexecuted.unchecked;
    else played = reexecuted;
  } else {
    unchecked = options.unchecked ?? `the agent file does not reach the agent ${recording.run.agent} through agentTool()`;
  }
  played ??= fromRecording(recording);
  const run = timeline.addRun(new ReplayedRun(recording.run, parent, played.messages, unchecked, recording.approvals, recording.effects));
  run.outcome = played.outcome;
  for (const entry of played.entries) {
    const position = timeline.append(run, entry);
    if (entry.divergence) position.divergence = entry.divergence;
    if (entry.kind !== 'tool') continue;
    for (const child of recording.children.get(entry.seq) ?? []) await addRun(timeline, child, { run, seq: entry.seq }, options);
  }
}

/** Thrown by the inspector to stop a re-execution where the recording has nothing more to serve. */
class RecordingEnds extends KeelError {}

/** What a re-executed step saw as it began. */
interface Seen {
  readonly turn: number;
  readonly messageCount: number;
  readonly call: ToolCall | null;
}

/** Runs the agent's code again over the recording; or says why it cannot. */
async function reexecute(recording: Recording, agent: Agent): Promise<Played | { readonly unchecked: string }> {
  const { run, steps } = recording;
  // By seq, which counts from 1.
  const bySeq: StepRecord[] = [];
  for (const step of steps) bySeq[step.seq] = step;
  // What each step saw as it began, by seq: the conversation grows after, so its length is taken now.
  const seen: Seen[] = [];
  let last: StepInfo | undefined;
  let stopped: 'missing' | 'ended' | undefined;
  let end;
  try {
    end = await reexecuteRecording(recording, agent, {
      beforeStep(info) {
        last = info;
        seen[info.seq] = { turn: info.turn, messageCount: info.messages.length, call: info.call };
        const step = bySeq[info.seq];
        if (!step) stopped = 'missing';
        // The run stopped in (or because of) this step: it has no result to serve.
        else if (step.status === 'in_progress' || (step.kind === 'model' && step.status === 'failed')) stopped = 'ended';
        if (stopped) throw new RecordingEnds('The recording has no result for this step.');
      },
    });
  } catch (error) {
    return { unchecked: `its agent could not re-execute it: ${describeError(error)}` };
  }
  if (end.refused) {
    return { unchecked: `re-executing it needs ${end.refused}(), which a recording does not keep` };
  }

  const reached = last ? (stopped === 'missing' ? last.seq - 1 : last.seq) : 0;
  const messages = last?.messages ?? [];
  const entries: (PositionEntry & { divergence?: string })[] = [];
  let context: Seen = { turn: 0, messageCount: 2, call: null };
  for (const step of steps) {
    if (step.seq > reached) break;
    const info = seen[step.seq];
    if (info) context = info;
    entries.push(entryOf(step, context.turn, context.messageCount, info?.call ?? (step.kind === 'tool' ? recordedCall(step) : null)));
  }
  const recordedEnd = `the run ${RUN_STATE_LABELS[run.state]}${run.error ? `: ${run.error}` : ''}`;
  const lastRecorded = recording.steps.at(-1)?.seq ?? 0;
  const stoppedAs = end.end;
  /** Where the agent and the recording part, if they do. */
  const divergenceOf = (): string | undefined => {
    // The run completed as recorded, yet the agent asks for one more step.
    if (stopped === 'missing' && run.state === 'completed') {
      return `The agent now goes on to step ${last?.seq ?? 1} (${last?.kind === 'tool' ? `a call to ${last.name}` : 'a model call'}), but the recorded run completed after step ${reached}.`;
    }
    if (stopped) return undefined;
    // The journal's own checks (JournalDivergenceError) leave the run interrupted.
    if (stoppedAs?.state === 'interrupted') return stoppedAs.error ?? 'The agent no longer matches the recording.';
    if (lastRecorded > reached) {
      const why = stoppedAs?.state === 'completed' ? 'with its answer' : `(${stoppedAs?.error ?? 'it stopped'})`;
      return `The agent now ends the run after step ${reached} ${why}, but the recording goes on to step ${lastRecorded}.`;
    }
    if (stoppedAs && stoppedAs.state !== run.state) {
      return `The agent now ends the run ${RUN_STATE_LABELS[stoppedAs.state]}${stoppedAs.error ? ` (${stoppedAs.error})` : ''}, but the recorded run ${RUN_STATE_LABELS[run.state]}.`;
    }
    return undefined;
  };
  const divergence = divergenceOf();
  if (divergence) {
    const at = entries.at(-1);
    if (at) entries[entries.length - 1] = { ...at, divergence };
    return { entries, messages, outcome: `Diverged${at ? ` at step ${at.seq}` : ''}: ${divergence}` };
  }
  const outcome = stopped ? `The recording ends here: ${recordedEnd}.` : `Replayed as recorded: ${recordedEnd}.`;
  return { entries, messages, outcome };
}

/** The steps and conversation of a run as its recording alone tells them, for runs no agent re-executes. */
function fromRecording(recording: Recording): Played {
  const { run } = recording;
  const messages: Message[] = [
    { role: 'system', content: run.agentFacts?.instructions ?? '' },
    { role: 'user', content: run.input },
  ];
  const entries: PositionEntry[] = [];
  let turn = -1;
  for (const step of recording.steps) {
    if (step.kind === 'model') turn += 1;
    entries.push(entryOf(step, Math.max(turn, 0), messages.length, step.kind === 'tool' ? recordedCall(step) : null));
    const said = messageOf(step);
    if (said) messages.push(said);
  }
  const last = recording.steps.at(-1);
  const outcome = `Replayed from the recording: the run ${RUN_STATE_LABELS[run.state]}${run.error ? `: ${run.error}` : ''}${last ? ` after step ${last.seq}` : ''}.`;
  return { entries, messages, outcome };
}

function entryOf(step: StepRecord, turn: number, messageCount: number, call: ToolCall | null): PositionEntry {
  return { seq: step.seq, kind: step.kind, name: step.name, turn, messageCount, call, step };
}

/** The call a recorded tool step made, from its input. */
function recordedCall(step: StepRecord): ToolCall {
  const input = (step.input ?? {}) as { toolCallId?: unknown; arguments?: unknown };
  return {
    id: typeof input.toolCallId === 'string' ? input.toolCallId : '',
    name: step.name,
    arguments: typeof input.arguments === 'string' ? input.arguments : '',
  };
}

/** What a finished step added to the conversation, as the loop adds it. */
function messageOf(step: StepRecord): Message | undefined {
  if (step.status === 'in_progress') return undefined;
  if (step.kind === 'model') return step.status === 'completed' ? (step.output as ModelResponse).message : undefined;
  const output = step.output as { content?: string } | null;
  return {
    role: 'tool',
    toolCallId: recordedCall(step).id,
    name: step.name,
    content: step.status === 'completed' ? (output?.content ?? '') : `Error: ${step.error ?? 'failed'}`,
    isError: step.status !== 'completed',
  };
}
