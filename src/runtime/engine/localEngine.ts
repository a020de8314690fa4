import type { RunEventListener } from '../agent/events';
import { loadAgentFile } from '../agent/loader';
import { Runtime, type RunHandle, type RuntimeOptions } from '../agent/runtime';
import { decide, type DecisionRequest } from '../approval/decide';
import type { BudgetPool } from '../budget/budget';
import { CircuitBreakers } from '../effects/circuitBreaker';
import { KeelError } from '../errors';
import type { ApprovalRecord, CheckpointStore, DecisionMeta, RunRecord } from '../store/checkpointStore';
import { rootRunOf, treeToContinue } from '../store/runTree';
import { pollRun, type Engine, type StartRequest, type WaitOptions } from './engine';

export type LocalEngineOptions = Omit<RuntimeOptions, 'store'>;

/**
 * The embedded engine: runs execute in this process on the Runtime, journaled in the store (SQLite
 * or PostgreSQL). A run executing elsewhere (another process) is followed through the store.
 */
export class LocalEngine implements Engine {
  readonly kind = 'local' as const;
  private readonly handles = new Map<string, RunHandle>();
  /** One runtime per set of shared pools, so that runs asking for the same pools share breakers and sandbox. */
  private readonly runtimes = new Map<string, Runtime>();
  private readonly breakers: CircuitBreakers;

  constructor(
    readonly store: CheckpointStore,
    private readonly options: LocalEngineOptions = {},
  ) {
    this.breakers = options.breakers ?? new CircuitBreakers(undefined, options.now);
  }

  private runtime(pools: readonly BudgetPool[] = []): Runtime {
    const all = [...(this.options.pools ?? []), ...pools];
    const key = JSON.stringify(all);
    let runtime = this.runtimes.get(key);
    if (!runtime) {
      runtime = new Runtime({ ...this.options, store: this.store, breakers: this.breakers, pools: all });
      this.runtimes.set(key, runtime);
    }
    return runtime;
  }

  private track(handle: RunHandle): string {
    this.handles.set(handle.runId, handle);
    const forget = () => this.handles.delete(handle.runId);
    handle.done.then(forget, forget);
    return handle.runId;
  }

  async start(request: StartRequest): Promise<string> {
    const { agent, file } = await loadAgentFile(request.agentFile);
    const handle = await this.runtime(request.pools).start(agent, {
      input: request.input,
      agentFile: file,
      ...(request.model === undefined ? {} : { model: request.model }),
      ...(request.budget ? { budget: request.budget } : {}),
      ...(request.threadId === undefined ? {} : { threadId: request.threadId }),
      ...(request.taskId === undefined ? {} : { taskId: request.taskId }),
      ...(request.onEvent ? { onEvent: request.onEvent } : {}),
    });
    return this.track(handle);
  }

  async wait(runId: string, options: WaitOptions = {}): Promise<RunRecord> {
    const handle = this.handles.get(runId);
    if (!handle) return pollRun(this.store, runId, options);
    const stopped = await handle.done;
    return stopped;
  }

  /** Continues the tree the run belongs to, from its root: a sub-agent's run goes on as its parent replays to it. */
  async resume(runId: string, options: { onEvent?: RunEventListener } = {}): Promise<void> {
    const run = await rootRunOf(this.store, runId);
    if (!run.agentFile) {
      throw new KeelError(`Run ${run.id} was not started from an agent file, so it cannot be resumed here; resume it in code with runtime.resume(agent, runId).`);
    }
    const { agent } = await loadAgentFile(run.agentFile, { agent: run.agent });
    this.track(await this.runtime().resume(agent, run.id, options.onEvent ? { onEvent: options.onEvent } : {}));
  }

  async decide(approvalId: string, request: DecisionRequest, meta: Omit<DecisionMeta, 'via'> & { via: 'cli' | 'vscode' }): Promise<ApprovalRecord> {
    const decided = await decide(this.store, approvalId, request, meta);
    const root = await treeToContinue(this.store, decided.runId);
    if (root && !this.handles.has(root.id)) await this.resume(root.id);
    return decided;
  }

  cancel(runId: string): Promise<void> {
    const handle = this.handles.get(runId);
    if (!handle) return Promise.reject(new KeelError(`Run ${runId} is not executing in this process, so it cannot be cancelled from here.`));
    handle.cancel();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.handles.values()].map((handle) => handle.done));
  }
}
