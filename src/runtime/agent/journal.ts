import { KeelError } from '../errors';
import type { StepKind, StepRecord } from '../store/checkpointStore';

/** A resumed run whose agent no longer makes the choices its journal recorded. */
export class JournalDivergenceError extends KeelError {
  constructor(
    readonly runId: string,
    readonly seq: number,
    detail: string,
  ) {
    super(
      `Run ${runId} no longer matches its agent at step ${seq}: ${detail}. Restore the agent as it was when the run started, or start a new run; nothing after step ${seq - 1} was executed.`,
      { context: { runId, seq } },
    );
  }
}

/** The steps a run recorded before it stopped, read back in order as the loop asks for them. */
export class Journal {
  /** By seq (an array: seqs count from 1, so it is dense, and quicker to fill than a Map). */
  private readonly bySeq: (StepRecord | undefined)[] = [];

  constructor(
    private readonly runId: string,
    steps: readonly StepRecord[],
  ) {
    for (const step of steps) this.bySeq[step.seq] = step;
  }

  /** The recorded step at `seq`, checked to be of the kind and name the agent now expects. */
  recorded(seq: number, kind: StepKind, name: string, describe: () => string): StepRecord | undefined {
    const step = this.bySeq[seq];
    if (!step) return undefined;
    if (step.kind !== kind || (kind === 'tool' && step.name !== name)) {
      throw new JournalDivergenceError(
        this.runId,
        seq,
        `the journal recorded ${step.kind === 'tool' ? `a call to ${step.name}` : 'a model call'}, but the agent now makes ${describe()}`,
      );
    }
    return step;
  }

  /**
   * Throws when the journal recorded a step after `seq`, where the agent now stops (`why`): say,
   * its maxSteps was lowered. The recorded steps, side effects among them, must not be dropped.
   */
  assertEndsAfter(seq: number, why: string): void {
    const next = this.bySeq[seq + 1];
    if (!next) return;
    throw new JournalDivergenceError(
      this.runId,
      seq + 1,
      `the journal recorded ${next.kind === 'tool' ? `a call to ${next.name}` : 'a model call'} here, but the agent now ${why}`,
    );
  }

  diverged(seq: number, detail: string): JournalDivergenceError {
    return new JournalDivergenceError(this.runId, seq, detail);
  }
}
