import type { Message, ToolCall } from '../model/model';
import type { RunRecord, StepKind, StepRecord } from '../store/checkpointStore';

/** A step about to execute, as a RunInspector sees it. */
export interface StepInfo {
  readonly run: RunRecord;
  readonly seq: number;
  readonly kind: StepKind;
  /** The model label of a model step, the tool name of a tool step. */
  readonly name: string;
  /** 0 for the first model call; a tool step has the turn of the model call that asked for it. */
  readonly turn: number;
  /** The call a tool step makes; null for a model step. */
  readonly call: ToolCall | null;
  /**
   * The conversation so far: what a model step sends, or for a tool step everything up to its
   * call. It is the run's own array: read it, never change it; it grows as the run goes on.
   */
  readonly messages: readonly Message[];
  /** What a model step's journal entry records of its request, and checks when it is replayed; null for a tool step. */
  readonly requestHash: string | null;
}

/**
 * Watches the runs of a runtime step by step (sub-agent runs included): the replay debugger pauses
 * live runs here, and checks recorded ones against their agent.
 */
export interface RunInspector {
  /**
   * Awaited before each step executes, whether its result will come from the journal (a resumed
   * run) or not. Throwing stops the run: it ends failed with that error.
   */
  beforeStep(step: StepInfo): void | Promise<void>;
  /** Told as soon as a step has ended, with its record (the journal writes it with the next step's start). */
  afterStep?(step: StepRecord): void;
}
