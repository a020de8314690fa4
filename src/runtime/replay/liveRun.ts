import type { Agent } from '../agent/define';
import type { RunEvent } from '../agent/events';
import type { StepInfo } from '../agent/inspector';
import type { RunHandle } from '../agent/runtime';
import type { RuntimeFactory } from '../host/host';
import { KeelError } from '../errors';
import { RUN_STATE_LABELS } from '../format';
import type { BudgetLimits } from '../budget/budget';
import type { RunRecord, StepRecord } from '../store/checkpointStore';
import type { LiveFeed } from './replayEngine';
import { ReplayedRun, Timeline } from './timeline';

export interface LiveRunOptions {
  /** Builds the run's runtime (a host's, with its configuration); the live run adds its inspector. */
  readonly runtime: RuntimeFactory;
  readonly agent: Agent;
  readonly agentFile: string;
  readonly input: string;
  /** A model spec overriding the agent's. */
  readonly model?: string;
  /** The run's own limits (the configured `budget.run`). */
  readonly budget?: BudgetLimits;
  /** Told whenever a run of the session changed: a step was added or ended, a run started or stopped. */
  readonly onChange?: (runId: string) => void;
}

interface Waiting {
  readonly index: number;
  readonly release: () => void;
  readonly refuse: (error: Error) => void;
}

/**
 * A run started for a live debug session: a real run (recorded as any other) whose every step,
 * sub-agent runs' included, waits before it executes until the debugger lets it go. Its timeline
 * grows step by step, so the session can step back over what already happened.
 */
export class LiveRun implements LiveFeed {
  readonly timeline = new Timeline();
  ended = false;
  outcome: string | null = null;
  private waiting: Waiting[] = [];
  private wakers: (() => void)[] = [];
  private handle: RunHandle | undefined;
  private stopped = false;

  constructor(private readonly options: LiveRunOptions) {}

  /** Starts the run; resolves with its id once it is recorded (its first step is then waiting). */
  async start(): Promise<string> {
    const { agent, agentFile, input, model, budget } = this.options;
    const runtime = this.options.runtime({ inspector: { beforeStep: (info) => this.beforeStep(info), afterStep: (step) => this.afterStep(step) } });
    const handle = await runtime.start(agent, { input, agentFile, ...(model ? { model } : {}), ...(budget ? { budget } : {}), onEvent: (event) => this.onEvent(event) });
    this.handle = handle;
    void handle.done.then(
      (run) => this.end(`The run ${RUN_STATE_LABELS[run.state]}${run.result !== null ? `: ${run.result}` : run.error ? `: ${run.error}` : ''}.`),
      (error: unknown) => this.end(`The run could not be recorded: ${error instanceof Error ? error.message : String(error)}`),
    );
    return handle.runId;
  }

  /** Resolves with the run's record once it has stopped. */
  get done(): Promise<RunRecord | undefined> {
    return this.handle ? this.handle.done : Promise.resolve(undefined);
  }

  advance(index: number): Promise<void> {
    const go = this.waiting.filter((waiting) => waiting.index <= index);
    this.waiting = this.waiting.filter((waiting) => waiting.index > index);
    const grew = new Promise<void>((resolve) => this.wakers.push(resolve));
    for (const waiting of go) waiting.release();
    if (this.ended) this.wake();
    return grew;
  }

  interrupt(): void {
    this.wake();
  }

  /** Cancels the run: the step waiting fails, and the run ends cancelled. */
  cancel(): void {
    this.stopped = true;
    this.handle?.cancel();
    for (const waiting of this.waiting.splice(0)) waiting.refuse(new KeelError('The debug session ended, so the run was cancelled.'));
    this.wake();
  }

  private beforeStep(info: StepInfo): Promise<void> {
    if (this.stopped) return Promise.reject(new KeelError('The debug session ended, so the run was cancelled.'));
    let run = this.timeline.runs.get(info.run.id);
    if (!run) {
      const parent = info.run.parentRunId === null ? undefined : this.timeline.runs.get(info.run.parentRunId);
      const at = parent && info.run.parentSeq !== null ? { run: parent, seq: info.run.parentSeq } : null;
      run = this.timeline.addRun(new ReplayedRun(info.run, at, info.messages, null));
    }
    run.messages = info.messages;
    const position = this.timeline.append(run, {
      seq: info.seq,
      kind: info.kind,
      name: info.name,
      turn: info.turn,
      messageCount: info.messages.length,
      call: info.call,
      step: null,
    });
    this.options.onChange?.(info.run.id);
    return new Promise<void>((release, refuse) => {
      this.waiting.push({ index: position.index, release, refuse });
      this.wake();
    });
  }

  private afterStep(step: StepRecord): void {
    const position = this.timeline.find(step.runId, step.seq);
    if (!position) return;
    this.timeline.complete(position, step);
    this.options.onChange?.(step.runId);
  }

  private onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'run_started':
      case 'run_finished':
        this.timeline.runs.get(event.run.id)?.update(event.run);
        this.options.onChange?.(event.run.id);
        break;
      default:
        break;
    }
  }

  private end(outcome: string): void {
    this.ended = true;
    this.outcome = outcome;
    this.wake();
  }

  private wake(): void {
    for (const wake of this.wakers.splice(0)) wake();
  }
}
