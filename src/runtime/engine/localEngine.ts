import type { RunEvent, RunEventListener } from '../agent/events';
import type { Runtime, RunHandle } from '../agent/runtime';
import { decide, type DecisionRequest } from '../approval/decide';
import { checkEditedArgs } from '../approval/editedArgs';
import type { BudgetLimits, BudgetPool } from '../budget/budget';
import { KeelError } from '../errors';
import type { CheckpointStore, DecisionMeta, RunRecord } from '../store/checkpointStore';
import { rootRunOf, treeToContinue } from '../store/runTree';
import { loadAgent, pollRun, type Decided, type Engine, type StartRequest, type WaitOptions } from './engine';

export interface LocalEngineOptions {
  /** The runtime that executes runs drawing on these shared pools (besides the configured ones). */
  readonly runtime: (pools: readonly BudgetPool[]) => Runtime;
  /** Every event of every run executed here, besides each request's own listener. */
  readonly onEvent?: RunEventListener;
  /** After a run executed here stops (ended, paused or interrupted), such as to export its trace. */
  readonly onStopped?: (run: RunRecord) => Promise<void> | void;
}

/**
 * The embedded engine: runs execute in this process on the Runtime, journaled in the store (SQLite
 * or PostgreSQL). A run executing elsewhere (another process) is followed through the store. The
 * runtime process and every CLI command run agents through it.
 */
export class LocalEngine implements Engine {
  readonly kind = 'local' as const;
  private readonly handles = new Map<string, { readonly handle: RunHandle; readonly stopped: Promise<RunRecord> }>();
  /** When this process began executing each run it executes now. */
  private readonly since = new Map<string, number>();

  constructor(
    readonly store: CheckpointStore,
    private readonly options: LocalEngineOptions,
  ) {}

  /** When this process began executing the run, if it executes it now. */
  executingSince(runId: string): number | undefined {
    return this.since.get(runId);
  }

  private listener(own: RunEventListener | undefined): RunEventListener | undefined {
    const shared = this.options.onEvent;
    if (!own || !shared) return own ?? shared;
    return (event: RunEvent) => {
      shared(event);
      own(event);
    };
  }

  /** Keeps a run executing here until it stops, and what follows its stop (onStopped) is done. */
  private track(handle: RunHandle): string {
    const forget = () => {
      this.handles.delete(handle.runId);
      this.since.delete(handle.runId);
    };
    const stopped = handle.done.then(
      async (run) => {
        forget();
        await this.options.onStopped?.(run);
        return run;
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
    // Whoever waits for the run sees a failure to record it; none goes unhandled meanwhile.
    stopped.catch(() => undefined);
    this.handles.set(handle.runId, { handle, stopped });
    this.since.set(handle.runId, Date.now());
    return handle.runId;
  }

  async start(request: StartRequest): Promise<string> {
    const { agent, file } = request.loaded ?? (await loadAgent(request.agentFile));
    const onEvent = this.listener(request.onEvent);
    const handle = await this.options.runtime(request.pools ?? []).start(agent, {
      input: request.input,
      agentFile: file,
      ...(request.model === undefined ? {} : { model: request.model }),
      ...(request.budget ? { budget: request.budget } : {}),
      ...(request.threadId === undefined ? {} : { threadId: request.threadId }),
      ...(request.taskId === undefined ? {} : { taskId: request.taskId }),
      ...(onEvent ? { onEvent } : {}),
    });
    return this.track(handle);
  }

  /** Resolves once the run stops (and, for one executing here, once what follows its stop is done). */
  async wait(runId: string, options: WaitOptions = {}): Promise<RunRecord> {
    const executing = this.handles.get(runId);
    return executing ? executing.stopped : pollRun(this.store, runId, options);
  }

  /**
   * Continues the tree the run belongs to, from its root (a sub-agent's run goes on as its parent
   * replays to it). Resolves with the id of the run that goes on.
   */
  async resume(runId: string, options: { onEvent?: RunEventListener; budget?: BudgetLimits } = {}): Promise<string> {
    const run = await rootRunOf(this.store, runId);
    if (!run.agentFile) {
      throw new KeelError(`Run ${run.id} was not started from an agent file, so it cannot be resumed here; resume it in code with runtime.resume(agent, runId).`);
    }
    const { agent } = await loadAgent(run.agentFile, { agent: run.agent });
    const onEvent = this.listener(options.onEvent);
    return this.track(await this.options.runtime([]).resume(agent, run.id, { ...(onEvent ? { onEvent } : {}), ...(options.budget ? { budget: options.budget } : {}) }));
  }

  /** Records the decision (edited arguments checked against the tool's schema first), then (unless `continue` is false) continues by the one rule (see treeToContinue), here. */
  async decide(
    approvalId: string,
    request: DecisionRequest,
    meta: Omit<DecisionMeta, 'via'> & { via: 'cli' | 'vscode' },
    options: { onEvent?: RunEventListener; continue?: boolean } = {},
  ): Promise<Decided> {
    await checkEditedArgs(this.store, approvalId, request);
    const approval = await decide(this.store, approvalId, request, meta);
    return { approval, continued: options.continue === false ? undefined : await this.continueAfter(approval.runId, options) };
  }

  /** Continues the tree of `runId` if nothing in it waits for a decision any more; the run that goes on, if any. */
  async continueAfter(runId: string, options: { onEvent?: RunEventListener } = {}): Promise<string | undefined> {
    const root = await treeToContinue(this.store, runId);
    if (!root) return undefined;
    return this.handles.has(root.id) ? root.id : this.resume(root.id, options);
  }

  cancel(runId: string): Promise<void> {
    const executing = this.handles.get(runId);
    if (!executing) return Promise.reject(new KeelError(`Run ${runId} is not executing in this process, so it cannot be cancelled from here.`));
    executing.handle.cancel();
    return Promise.resolve();
  }

  /** Whether this process executes the run now. */
  executes(runId: string): boolean {
    return this.handles.has(runId);
  }

  /** Cancels every run executing here and waits for them to stop. */
  async cancelAll(): Promise<void> {
    for (const { handle } of this.handles.values()) handle.cancel();
    await this.close();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.handles.values()].map(({ stopped }) => stopped));
  }
}
