import type { RunEventListener } from '../agent/events';
import type { LoadedAgent, loadAgentFile } from '../agent/loader';
import type { DecisionRequest } from '../approval/decide';
import type { BudgetLimits, BudgetPool } from '../budget/budget';
import { KeelError } from '../errors';
import type { ApprovalRecord, CheckpointStore, DecisionMeta, RunRecord } from '../store/checkpointStore';
import { TERMINAL_STATES } from '../store/checkpointStore';

/**
 * Where runs execute. `local`: in this process, on the Runtime over a CheckpointStore (SQLite or
 * PostgreSQL). `restate`: in a Restate workflow served by `keel serve --engine restate`, followed
 * here through the store both sides share. The same agent files run unchanged on either. The
 * conformance suite and the benchmark drive both through this interface only, as the CLI and the
 * runtime process do for runs on Restate.
 */
export type EngineKind = 'local' | 'restate';

export interface StartRequest {
  /** The agent file: absolute, or relative to the current directory. */
  readonly agentFile: string;
  /** The agent of that file, when the caller has loaded it already. */
  readonly loaded?: LoadedAgent;
  readonly input: string;
  /** A model spec (`openai:gpt-4o-mini`) instead of the agent's own. */
  readonly model?: string;
  readonly budget?: BudgetLimits;
  /** Shared budgets the run draws on besides the engine's own (such as the daily pool). */
  readonly pools?: readonly BudgetPool[];
  readonly threadId?: string;
  readonly taskId?: string;
  /** Live events of the run, where the engine can give them (the local one does). */
  readonly onEvent?: RunEventListener;
}

export interface WaitOptions {
  readonly signal?: AbortSignal;
  /** Gives up (throwing) after this long; no limit by default. */
  readonly timeoutMs?: number;
}

export interface Engine {
  readonly kind: EngineKind;
  /** The store runs are recorded in: where they are listed and read. */
  readonly store: CheckpointStore;
  /** Starts a run; resolves with its id once it is submitted, before it finishes. */
  start(request: StartRequest): Promise<string>;
  /** Resolves when the run stops: ended, or paused for a decision. */
  wait(runId: string, options?: WaitOptions): Promise<RunRecord>;
  /**
   * Lets an interrupted or paused run (whose decisions are made) go on: its tree, from the root;
   * with `budget`, a run that stopped `budget_exceeded`, under those larger limits. Resolves with
   * the id of the run that goes on.
   */
  resume(runId: string, options?: { onEvent?: RunEventListener; budget?: BudgetLimits }): Promise<string>;
  /**
   * Records a person's decision on a pending approval, with the checks of `decide()`, and lets its
   * run's tree go on by the one rule (see treeToContinue): from its root, once nothing in it waits.
   * `continue: false` only records it, where the engine lets a person continue later.
   */
  decide(
    approvalId: string,
    request: DecisionRequest,
    meta: Omit<DecisionMeta, 'via'> & { via: 'cli' | 'vscode' },
    options?: { onEvent?: RunEventListener; continue?: boolean },
  ): Promise<Decided>;
  /** Asks the run to stop at its next step; it ends `cancelled`. Resolves once the engine has the request. */
  cancel(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** A decision as recorded, and the run that went on after it (the root of its tree), if any did. */
export interface Decided {
  readonly approval: ApprovalRecord;
  readonly continued: string | undefined;
}

/** Whether a run has stopped for now: ended, or waiting for a person. */
export function hasStopped(run: RunRecord): boolean {
  return TERMINAL_STATES.includes(run.state) || run.state === 'waiting_approval';
}

/**
 * Reads the run from the store until `stopped` says so (by default: ended or waiting for a
 * decision). For runs executing in another process.
 */
export async function pollRun(
  store: CheckpointStore,
  runId: string,
  options: WaitOptions & { readonly intervalMs?: number; readonly stopped?: (run: RunRecord) => boolean | Promise<boolean> } = {},
): Promise<RunRecord> {
  const stopped = options.stopped ?? hasStopped;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 50;
  for (;;) {
    options.signal?.throwIfAborted();
    const run = await store.getRun(runId);
    if (run && (await stopped(run))) return run;
    if (Date.now() > deadline) {
      throw new KeelError(`Run ${runId} did not stop within ${options.timeoutMs ?? 0} ms${run ? ` (it is ${run.state})` : ' (it was never recorded)'}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Loads an agent file, the loader (esbuild, zod, the agent API) loaded by the first call: a
 * process that loads no agent file (keel runs, keel show) does not evaluate it.
 */
export async function loadAgent(...args: Parameters<typeof loadAgentFile>): Promise<LoadedAgent> {
  const loader = await import('../agent/loader.js');
  return loader.loadAgentFile(...args);
}
