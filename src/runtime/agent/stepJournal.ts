import type { Amounts } from '../budget/budget';
import type { FailedAttempt } from '../effects/retry';
import type { CheckpointStore, StepEnd, StepRecord, StepStart } from '../store/checkpointStore';
import type { RunEvent } from './events';
import type { RunInspector } from './inspector';

/** A reservation a step's end closes in the same transaction. */
export interface ReservationClose {
  readonly id: string;
  readonly actual: Amounts;
  readonly at: number;
}

type Begun = Pick<StepRecord, 'kind' | 'name' | 'input' | 'idempotencyKey' | 'startedAt'>;

/**
 * The write side of a run's journal: a checkpoint before each step (its start, written together
 * with the end of the step before) and after it (its end, kept until the next start or a flush, so
 * a step costs one transaction). What the run recorded before is read back by `Journal`.
 */
export class StepJournal {
  /** The end of the last step, written together with the start of the next one. */
  private pendingEnd: { end: StepEnd; record: StepRecord; close?: ReservationClose } | undefined;
  /** What the steps under way started with, to build their records when they end. */
  private readonly started = new Map<number, Begun>();
  /** Journal steps so far, for the run's step budget: recorded ones plus those ended here. */
  private done: number;

  constructor(
    private readonly store: CheckpointStore,
    private readonly runId: string,
    private readonly now: () => number,
    private readonly emit: (event: RunEvent) => void,
    private readonly inspector: RunInspector | undefined,
    stepsRecorded: number,
  ) {
    this.done = stepsRecorded;
  }

  /** Steps the run has made, recorded before and ended here. */
  get stepsDone(): number {
    return this.done;
  }

  /** Checkpoint before execute: the end of the previous step and the start of this one, in one transaction. */
  async begin(start: StepStart, durable = false): Promise<void> {
    const ended = this.pendingEnd;
    this.pendingEnd = undefined;
    await this.store.transition({ ...(ended ? { end: ended.end, ...(ended.close ? { close: ended.close } : {}) } : {}), begin: start, durable });
    if (ended) this.emit({ type: 'step_finished', step: ended.record });
    this.emit({
      type: 'step_started',
      step: {
        runId: start.runId,
        seq: start.seq,
        kind: start.kind,
        name: start.name,
        status: 'in_progress',
        input: start.input,
        output: null,
        error: null,
        idempotencyKey: start.idempotencyKey,
        attempts: 1,
        failedAttempts: [],
        costUsd: null,
        startedAt: start.startedAt,
        endedAt: null,
      },
    });
    this.started.set(start.seq, { kind: start.kind, name: start.name, input: start.input, idempotencyKey: start.idempotencyKey, startedAt: start.startedAt });
  }

  /**
   * A step that was in progress when its process stopped runs again, as one more attempt.
   * Returns its failed attempts, the interrupted one included.
   */
  async restart(recorded: StepRecord): Promise<FailedAttempt[]> {
    await this.flush();
    const startedAt = this.now();
    const interruption: FailedAttempt = {
      attempt: recorded.failedAttempts.length + 1,
      error: 'The runtime process stopped during this attempt.',
      class: 'retry',
      reason: 'interrupted',
      at: startedAt,
    };
    await this.store.restartStep(this.runId, recorded.seq, startedAt, interruption);
    const { kind, name, input, idempotencyKey } = recorded;
    this.started.set(recorded.seq, { kind, name, input, idempotencyKey, startedAt });
    return [...recorded.failedAttempts, interruption];
  }

  /**
   * A tool step whose last attempt paused for a sub-agent goes on as a new attempt: the pause is
   * recorded with how long it lasted, which also marks that an attempt began after it.
   */
  async resumeAfterPause(recorded: StepRecord, effectKey: string | undefined): Promise<FailedAttempt[]> {
    await this.flush();
    const at = this.now();
    const failures = recorded.failedAttempts.map((failure, index) =>
      index === recorded.failedAttempts.length - 1 ? { ...failure, delayMs: Math.max(0, at - failure.at) } : failure,
    );
    await this.store.recordFailedAttempts(this.runId, recorded.seq, failures, effectKey);
    this.adopt(recorded);
    return failures;
  }

  /** Takes a step recorded in progress as one under way here, so that it can be ended. */
  adopt(recorded: StepRecord): void {
    const { kind, name, input, idempotencyKey, startedAt } = recorded;
    this.started.set(recorded.seq, { kind, name, input, idempotencyKey, startedAt });
  }

  /** Records the failed attempts of a step still going (after the end waiting to be written). */
  async recordFailures(seq: number, failures: readonly FailedAttempt[], effectKey: string | undefined): Promise<void> {
    await this.flush();
    await this.store.recordFailedAttempts(this.runId, seq, failures, effectKey);
  }

  /** Remembers a step's end; it is written with the next step's start, or flushed. */
  end(seq: number, end: Omit<StepEnd, 'runId' | 'seq' | 'endedAt'>, failures: readonly FailedAttempt[], close?: ReservationClose): void {
    const endedAt = this.now();
    const begun = this.started.get(seq);
    this.started.delete(seq);
    const full: StepEnd = { ...end, runId: this.runId, seq, endedAt };
    const record: StepRecord = {
      runId: this.runId,
      seq,
      kind: begun?.kind ?? 'tool',
      name: begun?.name ?? '',
      status: end.status,
      input: begun?.input ?? null,
      output: end.output ?? null,
      error: end.error,
      idempotencyKey: begun?.idempotencyKey ?? null,
      attempts: failures.length + 1,
      failedAttempts: failures,
      costUsd: end.costUsd ?? null,
      startedAt: begun?.startedAt ?? endedAt,
      endedAt,
    };
    this.done += 1;
    this.pendingEnd = close ? { end: full, record, close } : { end: full, record };
    this.inspector?.afterStep?.(record);
  }

  /** Writes the end waiting to be written, if any. */
  async flush(): Promise<void> {
    const ended = this.pendingEnd;
    if (!ended) return;
    this.pendingEnd = undefined;
    await this.store.transition({ end: ended.end, ...(ended.close ? { close: ended.close } : {}) });
    this.emit({ type: 'step_finished', step: ended.record });
  }
}
