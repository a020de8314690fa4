import { EventEmitter } from 'node:events';
import { describeError } from '../errors';
import { Condition, type ConditionResult } from './sandboxEval';
import { STEP_VIEW_NAMES, stepView, type StepView } from './stepView';
import type { Position, Timeline } from './timeline';
import { renderTranscript, type Transcript } from './transcript';

export type StopReason = 'entry' | 'step' | 'breakpoint' | 'function breakpoint' | 'exception' | 'goto' | 'pause';

/** Where the engine stopped, and why. */
export interface Stop {
  readonly reason: StopReason;
  readonly index: number;
  readonly description: string;
  /** For exceptions: which filter caught it. */
  readonly exception?: ExceptionFilter;
  readonly text?: string;
  readonly breakpointIds?: readonly number[];
}

/** Stop at steps calling this tool (`*`: any tool), when the condition (an expression over the step's view) holds. */
export interface FunctionBreakpoint {
  /** The id a stop names it by. */
  readonly id: number;
  readonly name: string;
  readonly condition?: string;
}

/** Stop at the step whose transcript block holds this line. */
export interface LineBreakpoint {
  readonly id: number;
  readonly line: number;
  readonly condition?: string;
}

/** `divergence`: the agent no longer matches the recording; `errors`: a failed step; `flags`: a step the detectors flagged. */
export type ExceptionFilter = 'divergence' | 'errors' | 'flags';
export const EXCEPTION_FILTERS: readonly ExceptionFilter[] = ['divergence', 'errors', 'flags'];

/**
 * A run executing now, paused before each of its steps until the engine lets it go: what a live
 * session steps through. Its timeline grows as the run goes.
 */
export interface LiveFeed {
  /** Whether the run (with its sub-agent runs) has stopped. */
  readonly ended: boolean;
  /** How the run ended, once it has. */
  readonly outcome: string | null;
  /** Lets the steps waiting at or before `index` execute; resolves once the timeline grew, the run ended, or interrupt() was called. */
  advance(index: number): Promise<void>;
  /** Wakes whoever waits in advance(). */
  interrupt(): void;
}

interface EngineEvents {
  stopped: [Stop];
}

/** A breakpoint condition, compiled, with what it made of the steps tested so far (by position). */
interface CompiledCondition {
  readonly condition: Condition;
  readonly results: Map<number, ConditionResult>;
  /** How many positions the next batch tests; 0 once a batch failed, and each is tested alone. */
  batch: number;
}

const FIRST_BATCH = 16;
const MAX_BATCH = 1024;

/** Whether a condition can read the messages: it names them, or `arguments`, which holds every name. */
function readsMessages(condition: string): boolean {
  return condition.includes('messages') || condition.includes('arguments');
}

/** Whether a function breakpoint is on the tool a position calls. */
function calls(breakpoint: FunctionBreakpoint, position: Position): boolean {
  return position.kind === 'tool' && (breakpoint.name === '*' || breakpoint.name === position.name);
}

/**
 * Moves through a timeline as a debugger does: step (over sub-agent runs), step in, step out,
 * step back, continue and reverse continue to the next breakpoint, go to any step. Every move is a
 * walk over positions built beforehand, so going back costs what going forward does. In a live
 * session, moving past the last position lets the run execute its next step.
 */
export class ReplayEngine extends EventEmitter<EngineEvents> {
  /** The position stopped at; -1 before the first stop. */
  current = -1;
  private lastStop: Stop | undefined;
  private functionBreakpoints: readonly FunctionBreakpoint[] = [];
  private readonly lineBreakpoints = new Map<string, readonly LineBreakpoint[]>();
  private filters = new Set<ExceptionFilter>(['divergence']);
  private pauseRequested = false;
  private readonly transcripts = new Map<string, { readonly version: number; readonly transcript: Transcript }>();
  private moving: Promise<unknown> = Promise.resolve();
  /** The breakpoints' conditions, compiled, by their text. */
  private readonly conditions = new Map<string, CompiledCondition>();
  /** Which way the move under way walks the timeline: the way conditions are tested ahead. */
  private heading: 1 | -1 = 1;
  /** Errors of breakpoint conditions since they were last taken, for the session to show. */
  readonly conditionErrors: string[] = [];

  constructor(
    readonly timeline: Timeline,
    private readonly live?: LiveFeed,
    /** Stop before every tool call that has not executed yet (live sessions). */
    private readonly pauseBeforeTools = false,
  ) {
    super();
  }

  get stop(): Stop | undefined {
    return this.lastStop;
  }

  get position(): Position | undefined {
    return this.timeline.positions[this.current];
  }

  /** Starts the session: stopped at the first step, or running to the first breakpoint. */
  start(stopOnEntry: boolean): Promise<Stop> {
    return stopOnEntry ? this.forward(() => true, 'entry', 'The first step of the run.') : this.continue();
  }

  /** Step over: the next step of this run, or of the run that started it; sub-agent runs are passed. */
  next(): Promise<Stop> {
    const depth = this.depth();
    return this.forward((position) => position.run.depth <= depth, 'step', 'Stepped.');
  }

  stepIn(): Promise<Stop> {
    return this.forward(() => true, 'step', 'Stepped in.');
  }

  /** The step after the tool call that started this sub-agent run; at the top run, its end. */
  stepOut(): Promise<Stop> {
    const depth = this.depth();
    return this.forward((position) => position.run.depth < depth, 'step', 'Stepped out.');
  }

  continue(): Promise<Stop> {
    return this.forward(() => false, 'step', '');
  }

  /** The previous step of this run (or of the run that started it), sub-agent runs passed. */
  stepBack(): Promise<Stop> {
    const depth = this.depth();
    return this.backward((position) => position.run.depth <= depth, 'step', 'Stepped back.');
  }

  reverseContinue(): Promise<Stop> {
    return this.backward(() => false, 'step', '');
  }

  /** Jumps to a position (a step of any run of the session), ignoring breakpoints on the way. */
  goTo(index: number): Promise<Stop> {
    return this.serially(() => {
      const target = Math.max(0, Math.min(index, this.timeline.positions.length - 1));
      return this.stopAt({ reason: 'goto', index: target, description: `Went to step ${this.timeline.positions[target]?.seq ?? '?'}.` });
    });
  }

  /** Stops a live session as soon as it can: at the next step, or where it is if the run is busy. */
  pause(): void {
    this.pauseRequested = true;
    this.live?.interrupt();
  }

  setFunctionBreakpoints(breakpoints: readonly FunctionBreakpoint[]): void {
    this.functionBreakpoints = breakpoints;
    this.conditions.clear();
  }

  /** Line breakpoints in a run's transcript; each stops at the step whose block holds its line. */
  setLineBreakpoints(runId: string, breakpoints: readonly LineBreakpoint[]): void {
    this.lineBreakpoints.set(runId, breakpoints);
    this.conditions.clear();
  }

  setExceptionFilters(filters: readonly string[]): void {
    this.filters = new Set(EXCEPTION_FILTERS.filter((filter) => filters.includes(filter)));
  }

  /** A run's transcript as the session knows it now; cached until the run's steps change. */
  transcript(runId: string): Transcript | undefined {
    const run = this.timeline.runs.get(runId);
    if (!run) return undefined;
    const cached = this.transcripts.get(runId);
    if (cached?.version === run.version) return cached.transcript;
    const positions = run.indices.map((index) => this.timeline.positions[index]).filter((position) => position !== undefined);
    const children = new Map<number, typeof run.run[]>();
    for (const other of this.timeline.runs.values()) {
      if (other.parent?.run !== run) continue;
      children.set(other.parent.seq, [...(children.get(other.parent.seq) ?? []), other.run]);
    }
    const transcript = renderTranscript(run.run, positions, children, run.approvals);
    this.transcripts.set(runId, { version: run.version, transcript });
    return transcript;
  }

  /** The position whose transcript block holds `line` in a run's transcript. */
  positionAtLine(runId: string, line: number): Position | undefined {
    const transcript = this.transcript(runId);
    const run = this.timeline.runs.get(runId);
    if (!transcript || !run) return undefined;
    let found: Position | undefined;
    for (const index of run.indices) {
      const position = this.timeline.positions[index];
      const start = position ? transcript.lines.get(position.seq) : undefined;
      if (position && start !== undefined && start <= line) found = position;
    }
    return found;
  }

  private depth(): number {
    return this.position?.run.depth ?? 0;
  }

  private forward(stopsHere: (position: Position) => boolean, reason: StopReason, description: string): Promise<Stop> {
    return this.serially(async () => {
      this.heading = 1;
      const { positions } = this.timeline;
      let index = this.current;
      for (;;) {
        if (index + 1 >= positions.length) {
          if (this.live && !this.live.ended && !this.pauseRequested) {
            await this.live.advance(index);
            continue;
          }
          // At the end (index -1 when the run had no step at all), or paused while the run works on its step.
          if (this.pauseRequested) {
            this.pauseRequested = false;
            return this.stopAt({ reason: 'pause', index, description: 'Paused; the run goes on to its next step.' });
          }
          return this.stopAt({ reason: 'step', index, description: this.endOfRun() });
        }
        index += 1;
        const position = positions[index];
        if (!position) continue;
        const hit = this.hit(position);
        if (hit) return this.stopAt({ ...hit, index });
        if (this.pauseRequested) {
          this.pauseRequested = false;
          return this.stopAt({ reason: 'pause', index, description: 'Paused.' });
        }
        if (stopsHere(position)) return this.stopAt({ reason, index, description });
      }
    });
  }

  private backward(stopsHere: (position: Position) => boolean, reason: StopReason, description: string): Promise<Stop> {
    return this.serially(() => {
      this.heading = -1;
      const { positions } = this.timeline;
      for (let index = this.current - 1; index >= 0; index--) {
        const position = positions[index];
        if (!position) continue;
        const hit = this.hit(position);
        if (hit) return this.stopAt({ ...hit, index });
        if (stopsHere(position)) return this.stopAt({ reason, index, description });
      }
      return this.stopAt({ reason: 'entry', index: 0, description: 'The first step of the run.' });
    });
  }

  /** Moves run one after another: a live step can take a while, and a second move waits for the first. */
  private serially(move: () => Stop | Promise<Stop>): Promise<Stop> {
    const result = this.moving.then(move);
    this.moving = result.catch(() => undefined);
    return result;
  }

  private stopAt(stop: Stop): Stop {
    this.current = stop.index;
    this.lastStop = stop;
    this.emit('stopped', stop);
    return stop;
  }

  private endOfRun(): string {
    const root = this.timeline.root;
    const outcome = this.live ? this.live.outcome : root?.outcome;
    return `The end of the session. ${outcome ?? ''}`.trim();
  }

  /** The breakpoint or exception filter that stops at this position, if any. */
  private hit(position: Position): Omit<Stop, 'index'> | undefined {
    const { step } = position;
    if (position.divergence && this.filters.has('divergence')) {
      return { reason: 'exception', exception: 'divergence', description: 'The agent no longer matches the recording.', text: position.divergence };
    }
    if (step?.status === 'failed' && this.filters.has('errors')) {
      return { reason: 'exception', exception: 'errors', description: `Step ${position.seq} failed.`, text: step.error ?? 'failed' };
    }
    if (step && this.filters.has('flags')) {
      const flags = position.run.flagsOf(position.seq, this.timeline);
      if (flags.length > 0) {
        return { reason: 'exception', exception: 'flags', description: `Step ${position.seq} is flagged: ${flags.map((flag) => flag.kind).join(', ')}.`, text: flags.map((flag) => flag.message).join('\n') };
      }
    }
    const lines = this.lineBreakpoints.get(position.run.run.id);
    if (lines && lines.length > 0) {
      const transcript = this.transcript(position.run.run.id);
      const start = transcript?.lines.get(position.seq);
      const following = this.timeline.positions[position.run.indices[position.ordinal + 1] ?? -1];
      const end = following ? transcript?.lines.get(following.seq) : undefined;
      const ids = lines
        .filter((breakpoint) => start !== undefined && breakpoint.line >= start && (end === undefined || breakpoint.line < end))
        .filter((breakpoint) => this.holds(breakpoint.condition, position))
        .map(({ id }) => id);
      if (ids.length > 0) return { reason: 'breakpoint', description: `Breakpoint at step ${position.seq}.`, breakpointIds: ids };
    }
    if (position.kind === 'tool') {
      const ids = this.functionBreakpoints
        .filter((breakpoint) => calls(breakpoint, position))
        .filter((breakpoint) => this.holds(breakpoint.condition, position, (other) => calls(breakpoint, other)))
        .map(({ id }) => id);
      if (ids.length > 0) return { reason: 'function breakpoint', description: `Breakpoint on ${position.name} at step ${position.seq}.`, breakpointIds: ids };
      if (this.pauseBeforeTools && !step) return { reason: 'breakpoint', description: `Before the call to ${position.name} (step ${position.seq}).` };
    }
    return undefined;
  }

  /**
   * A condition holds when it is empty or true; one that throws stops too, so that its error is
   * seen. `tested`, when given, says at which other positions the same breakpoint tests the same
   * condition: in a replay (whose steps no longer change) the next of those ahead are tested
   * with this one, in one entry into the sandbox.
   */
  private holds(condition: string | undefined, position: Position, tested?: (position: Position) => boolean): boolean {
    if (!condition?.trim()) return true;
    let result: ConditionResult;
    try {
      let compiled = this.conditions.get(condition);
      if (!compiled) {
        // A condition over the messages is not batched: each step's copy of them grows with the run.
        compiled = { condition: new Condition(condition, STEP_VIEW_NAMES), results: new Map(), batch: readsMessages(condition) ? 0 : FIRST_BATCH };
        this.conditions.set(condition, compiled);
      }
      result =
        compiled.results.get(position.index) ??
        (tested && !this.live && compiled.batch > 0 ? this.testAhead(compiled, condition, position, tested) : compiled.condition.holds(this.scope(condition, position)));
    } catch (error) {
      result = { error: describeError(error) };
    }
    if (typeof result === 'boolean') return result;
    this.conditionErrors.push(`The condition ${condition} failed at step ${position.seq}: ${result.error}`);
    return true;
  }

  /**
   * Tests the condition at `position` and at the next positions ahead that `tested` picks, all in
   * one go, and keeps the results. Each batch is twice the last, up to MAX_BATCH, so a stop close
   * by costs little and a long walk enters the sandbox seldom. A batch that fails as a whole
   * (out of time) leaves this test and every later one of this condition to be made alone.
   */
  private testAhead(compiled: CompiledCondition, condition: string, position: Position, tested: (position: Position) => boolean): ConditionResult {
    const { positions } = this.timeline;
    const batch: Position[] = [position];
    for (let index = position.index + this.heading; batch.length < compiled.batch && index >= 0 && index < positions.length; index += this.heading) {
      const next = positions[index];
      if (next && tested(next) && !compiled.results.has(index)) batch.push(next);
    }
    compiled.batch = Math.min(compiled.batch * 2, MAX_BATCH);
    let results: ConditionResult[];
    try {
      results = compiled.condition.holdsEach(batch.map((each) => this.scope(condition, each)));
    } catch {
      compiled.batch = 0;
      return compiled.condition.holds(this.scope(condition, position));
    }
    batch.forEach((each, at) => compiled.results.set(each.index, results[at] ?? { error: 'The condition gave no result.' }));
    return results[0] ?? { error: 'The condition gave no result.' };
  }

  /** A step's view as a condition sees it: with the messages only if it can read them. */
  private scope(condition: string, position: Position): Record<string, unknown> {
    return { ...this.view(position, readsMessages(condition)) };
  }

  /** What the debugger shows of a step; its messages only when asked for (they grow with the run). */
  view(position: Position, withMessages = false): StepView {
    return stepView(this.timeline, position, { messages: withMessages });
  }
}
