import type { BudgetLimits } from '../budget/budget';
import type { Message, ModelResponse, ToolCall } from '../model/model';
import type { ApprovalRecord, EffectRecord, RunRecord, StepKind, StepRecord } from '../store/checkpointStore';
import { detectFlags, type DetectedFlag } from '../trace/detectors';
import { agentFacts } from '../trace/agentFacts';

/** What a run had spent when a step ended, that step included. */
export interface Spent {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly usd: number;
  /** False once a step of unknown price ran: `usd` is then a lower bound. */
  readonly usdKnown: boolean;
  readonly steps: number;
}

const NOTHING_SPENT: Spent = { inputTokens: 0, outputTokens: 0, usd: 0, usdKnown: true, steps: 0 };

/** One run of a replay or a live session: where it sits, what it said, how its replay went. */
export class ReplayedRun {
  readonly depth: number;
  /** The timeline indices of its steps, in order. */
  readonly indices: number[] = [];
  /** The timeline index of each of its steps, by seq. */
  readonly bySeq = new Map<number, number>();
  /** How the replay of this run ended: completed as recorded, where the recording stops, or a divergence. */
  outcome: string | null = null;
  /** Counts changes to the run and its steps, so views of it know when to render again. */
  version = 0;
  private flagCache: { readonly version: number; readonly bySeq: ReadonlyMap<number | null, readonly DetectedFlag[]> } | undefined;

  constructor(
    /** The run's record; a live session updates it (see update) as the run goes. */
    public run: RunRecord,
    readonly parent: { readonly run: ReplayedRun; readonly seq: number } | null,
    /** The conversation as the loop built it: the runtime's own array when it re-executed the run or runs it live. */
    public messages: readonly Message[],
    /**
     * Null when the agent's code re-executed the run, checked against every recorded step (or runs
     * it live); otherwise why the run replays from its recording alone.
     */
    readonly unchecked: string | null,
    /** Its approvals as recorded (the transcript shows them at their steps). */
    readonly approvals: readonly ApprovalRecord[] = [],
    private readonly effects: readonly EffectRecord[] = [],
  ) {
    this.depth = parent ? parent.run.depth + 1 : 0;
  }

  /** A newer record of the run (a live session). */
  update(run: RunRecord): void {
    this.run = run;
    this.version += 1;
  }

  /** The detectors' flags of a step (`null`: those of the run as a whole), over the steps so far. */
  flagsOf(seq: number | null, timeline: Timeline): readonly DetectedFlag[] {
    if (this.flagCache?.version !== this.version) {
      const steps = this.indices.flatMap((index) => {
        const step = timeline.positions[index]?.step;
        return step ? [step] : [];
      });
      const bySeq = new Map<number | null, DetectedFlag[]>();
      const source = { run: this.run, steps, approvals: this.approvals, effects: this.effects };
      for (const flag of detectFlags(source, agentFacts(this.run))) bySeq.set(flag.seq, [...(bySeq.get(flag.seq) ?? []), flag]);
      this.flagCache = { version: this.version, bySeq };
    }
    return this.flagCache.bySeq.get(seq) ?? [];
  }
}

/** One step of a run at its place in the whole session: what the debugger stops at. */
export interface Position {
  readonly index: number;
  readonly run: ReplayedRun;
  /** Its place among its run's steps, from 0. */
  readonly ordinal: number;
  readonly seq: number;
  readonly kind: StepKind;
  /** The model label of a model step, the tool name of a tool step. */
  readonly name: string;
  /** The model turn: 0 for the first model call; a tool step has the turn of the call that asked for it. */
  readonly turn: number;
  /** How many of the run's messages came before this step: what a model step sends, or a tool step's context. */
  readonly messageCount: number;
  /** The call a tool step makes. */
  readonly call: ToolCall | null;
  /** The step as recorded; null while a live step has not executed yet. */
  step: StepRecord | null;
  /** What the run had spent when this step ended (it included); before it, while it has not. */
  spent: Spent;
  /** Set where a replay stops because the agent no longer matches the recording. */
  divergence: string | null;
}

/** What a step is when it is added to a timeline. */
export type PositionEntry = Pick<Position, 'seq' | 'kind' | 'name' | 'turn' | 'messageCount' | 'call' | 'step'>;

/**
 * Every step of a session in the order it executed, sub-agent runs nested right after the tool
 * step that started them. Built once; each position keeps what the debugger shows of it, so
 * moving to any step, backwards included, costs the same.
 */
export class Timeline {
  readonly positions: Position[] = [];
  readonly runs = new Map<string, ReplayedRun>();

  get root(): ReplayedRun | undefined {
    return this.positions[0]?.run ?? [...this.runs.values()].find((run) => run.parent === null);
  }

  addRun(run: ReplayedRun): ReplayedRun {
    this.runs.set(run.run.id, run);
    // The parent's transcript names its sub-agent runs.
    if (run.parent) run.parent.run.version += 1;
    return run;
  }

  append(run: ReplayedRun, entry: PositionEntry): Position {
    const previous = run.indices.at(-1);
    const before = previous === undefined ? NOTHING_SPENT : (this.positions[previous]?.spent ?? NOTHING_SPENT);
    const position: Position = {
      index: this.positions.length,
      run,
      ordinal: run.indices.length,
      seq: entry.seq,
      kind: entry.kind,
      name: entry.name,
      turn: entry.turn,
      messageCount: entry.messageCount,
      call: entry.call,
      step: entry.step,
      spent: entry.step ? spentAfter(before, entry.step) : before,
      divergence: null,
    };
    this.positions.push(position);
    run.indices.push(position.index);
    run.bySeq.set(position.seq, position.index);
    run.version += 1;
    return position;
  }

  /** A live step ended: its record, and what the run has spent with it. */
  complete(position: Position, step: StepRecord): void {
    const previous = position.ordinal === 0 ? undefined : position.run.indices[position.ordinal - 1];
    const before = previous === undefined ? NOTHING_SPENT : (this.positions[previous]?.spent ?? NOTHING_SPENT);
    position.step = step;
    position.spent = spentAfter(before, step);
    position.run.version += 1;
  }

  /** The position of a run's step, if the session has reached it. */
  find(runId: string, seq: number): Position | undefined {
    const index = this.runs.get(runId)?.bySeq.get(seq);
    return index === undefined ? undefined : this.positions[index];
  }

  /** The frames of a position: itself, then each tool step that started the run it is in, outwards. */
  frames(position: Position): Position[] {
    const frames = [position];
    for (let run = position.run; run.parent; run = run.parent.run) {
      const caller = this.find(run.parent.run.run.id, run.parent.seq);
      if (!caller) break;
      frames.push(caller);
    }
    return frames;
  }
}

function spentAfter(before: Spent, step: StepRecord): Spent {
  if (step.status === 'in_progress') return before;
  const usage = step.kind === 'model' && step.status === 'completed' ? (step.output as ModelResponse | null)?.usage : undefined;
  return {
    inputTokens: before.inputTokens + (usage?.inputTokens ?? 0),
    outputTokens: before.outputTokens + (usage?.outputTokens ?? 0),
    usd: before.usd + (step.costUsd ?? 0),
    usdKnown: before.usdKnown && (step.kind !== 'model' || step.costUsd !== null),
    steps: before.steps + 1,
  };
}

/** The budget of a run at a step: its limits, what it had spent, what was left. */
export function budgetAt(limits: BudgetLimits | null, spent: Spent): Record<string, unknown> {
  const left: Record<string, number> = {};
  if (limits) {
    const tokens = spent.inputTokens + spent.outputTokens;
    if (limits.inputTokens !== undefined) left['inputTokens'] = limits.inputTokens - spent.inputTokens;
    if (limits.outputTokens !== undefined) left['outputTokens'] = limits.outputTokens - spent.outputTokens;
    if (limits.tokens !== undefined) left['tokens'] = limits.tokens - tokens;
    if (limits.usd !== undefined) left['usd'] = limits.usd - spent.usd;
    if (limits.steps !== undefined) left['steps'] = limits.steps - spent.steps;
  }
  return { limits: limits ?? {}, spent, left };
}
