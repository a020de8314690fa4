import type { RunEventListener } from '../agent/events';
import { decide, type DecisionRequest } from '../approval/decide';
import { checkEditedArgs } from '../approval/editedArgs';
import { KeelError, describeError } from '../errors';
import { newRunId } from '../ids';
import { RUN_STATE_LABELS } from '../format';
import type { CheckpointStore, DecisionMeta, RunRecord } from '../store/checkpointStore';
import { TERMINAL_STATES } from '../store/checkpointStore';
import { approvalsOfTree, rootRunOf } from '../store/runTree';
import { loadAgent, pollRun, type Decided, type Engine, type StartRequest, type WaitOptions } from './engine';
import { followRun, hasStoppedElsewhere } from './followRun';
import type { DecideRequest, RunRequest } from './restate/agentWorkflow';
import { isRestateOwned, workflowNameFor } from './restate/naming';
import { DEFAULT_ADMIN_URL, DEFAULT_INGRESS_URL, RestateRequestError, restateRequest, type RestateApi } from './restate/restateHttp';

export interface RestateEngineOptions {
  /** The Restate server's ingress, where runs start and decisions arrive (`http://127.0.0.1:8080`). */
  readonly ingressUrl?: string;
  /** Its admin API, where runs are cancelled (`http://127.0.0.1:9070`). */
  readonly adminUrl?: string;
  /** How often a run is read from the store while it is followed, in milliseconds. */
  readonly pollMs?: number;
}

/**
 * Runs on Restate: each is a workflow, `keel.<agent>` keyed by the run id, served by
 * `keel serve --engine restate` and started through the Restate ingress. This side starts runs,
 * passes decisions on (a decision is recorded in the store, then resolves the durable promise the
 * run waits on) and follows runs through the store both sides share.
 */
export class RestateEngine implements Engine {
  readonly kind = 'restate' as const;
  private readonly ingress: RestateApi;
  /** The ingress this engine starts runs and passes decisions through. */
  readonly ingressUrl: string;
  private readonly admin: RestateApi;
  private readonly pollMs: number;
  /** Runs followed here, and what following each resolves with once it stops. */
  private readonly following = new Map<string, { readonly controller: AbortController; readonly stopped: Promise<RunRecord | undefined> }>();

  constructor(
    readonly store: CheckpointStore,
    options: RestateEngineOptions = {},
  ) {
    this.ingressUrl = options.ingressUrl ?? DEFAULT_INGRESS_URL;
    this.ingress = { base: this.ingressUrl, api: 'ingress' };
    this.admin = { base: options.adminUrl ?? DEFAULT_ADMIN_URL, api: 'admin' };
    this.pollMs = options.pollMs ?? 50;
  }

  async start(request: StartRequest): Promise<string> {
    const { agent, file } = request.loaded ?? (await loadAgent(request.agentFile));
    const runId = newRunId();
    const body: RunRequest = {
      input: request.input,
      ...(request.model === undefined ? {} : { model: request.model }),
      ...(request.budget ? { budget: request.budget } : {}),
      ...(request.pools?.length ? { pools: request.pools } : {}),
      ...(request.threadId === undefined ? {} : { threadId: request.threadId }),
      ...(request.taskId === undefined ? {} : { taskId: request.taskId }),
    };
    await this.call(agent.name, file, `/${workflowNameFor(agent.name)}/${runId}/run/send`, body);
    if (request.onEvent) this.follow(runId, request.onEvent);
    return runId;
  }

  async wait(runId: string, options: WaitOptions = {}): Promise<RunRecord> {
    // A run followed here has stopped once its follower has reported it so (its last events first).
    const followed = this.following.get(runId);
    if (followed && options.timeoutMs === undefined) {
      const abort = () => followed.controller.abort();
      options.signal?.addEventListener('abort', abort, { once: true });
      try {
        const stopped = await followed.stopped;
        if (stopped) return stopped;
      } finally {
        options.signal?.removeEventListener('abort', abort);
      }
      options.signal?.throwIfAborted();
    }
    return pollRun(this.store, runId, { ...options, intervalMs: this.pollMs, stopped: (run) => hasStoppedElsewhere(this.store, run) });
  }

  async resume(runId: string, options: { onEvent?: RunEventListener } = {}): Promise<string> {
    const run = await this.store.getRun(runId);
    if (!run) throw new KeelError(`There is no run ${runId} in ${this.store.location}.`);
    if (!isRestateOwned(run)) throw new KeelError(`Run ${runId} was not started on Restate; resume it with the local engine (keel resume ${runId}).`);
    if (TERMINAL_STATES.includes(run.state)) throw new KeelError(`Run ${runId} has ended (${RUN_STATE_LABELS[run.state]}); only interrupted or paused runs can be resumed.`);
    if (run.state === 'interrupted') {
      throw new KeelError(
        `Run ${runId} stopped on Restate and cannot go on there: ${run.error ?? 'its execution ended'}. Restate continues its runs by itself after a crash; this one needs a new run.`,
      );
    }
    const pending = await approvalsOfTree(this.store, runId, 'pending');
    if (pending[0]) throw new KeelError(`Run ${runId} is waiting for a decision on approval ${pending[0].id} (${pending[0].tool}): ${pending[0].reason}`);
    // Running, or paused with its decisions made: Restate goes on with it; follow it here.
    if (options.onEvent) this.follow(runId, options.onEvent);
    return runId;
  }

  async decide(approvalId: string, request: DecisionRequest, meta: Omit<DecisionMeta, 'via'> & { via: 'cli' | 'vscode' }): Promise<Decided> {
    const approval = await this.store.getApproval(approvalId);
    if (!approval) throw new KeelError(`There is no approval ${approvalId}; \`keel approvals\` lists the pending ones.`);
    const root = await rootRunOf(this.store, approval.runId);
    // A decision recorded before Restate could be told is passed on again, rather than refused.
    const passOn = approval.status !== 'pending' && root.state === 'waiting_approval' && isRestateOwned(root);
    if (!passOn) await checkEditedArgs(this.store, approvalId, request);
    const decided = passOn ? approval : await decide(this.store, approvalId, request, meta);
    const body: DecideRequest = { approvalId, decision: decided.decision };
    try {
      await this.call(root.agent, root.agentFile, `/${workflowNameFor(root.agent)}/${root.id}/decide`, body);
    } catch (error) {
      throw new KeelError(`The decision on ${approvalId} is recorded, but run ${root.id} could not be told: ${describeError(error)} Decide again once Restate is reachable.`, {
        cause: error,
      });
    }
    // Restate continues the tree itself, by the same rule: its workflow waits until nothing in the tree does.
    return { approval: decided, continued: root.id };
  }

  /** Cancels the run's workflow through Restate's admin API; the workflow ends the run `cancelled`. */
  async cancel(runId: string): Promise<void> {
    const run = await this.store.getRun(runId);
    if (!run) throw new KeelError(`There is no run ${runId} in ${this.store.location}.`);
    const root = await rootRunOf(this.store, runId);
    const target = `${workflowNameFor(root.agent)}/${root.id}/run`;
    const answer = (await restateRequest(this.admin, 'POST', '/query', { query: `SELECT id FROM sys_invocation WHERE target = '${target}' AND status != 'completed'` }, { accept: 'application/json' })) as
      | { rows?: { id?: unknown }[] }
      | undefined;
    const invocation = answer?.rows?.[0]?.id;
    if (typeof invocation !== 'string') throw new KeelError(`Run ${root.id} is not in flight on Restate at ${this.admin.base}, so there is nothing to cancel.`);
    await restateRequest(this.admin, 'PATCH', `/invocations/${invocation}/cancel`);
  }

  close(): Promise<void> {
    for (const { controller } of this.following.values()) controller.abort();
    return Promise.resolve();
  }

  /**
   * Reports the run's progress as events, read from the store, until it stops: the steps that end
   * from `since` on (by default, from now).
   */
  follow(runId: string, onEvent: RunEventListener, since?: number): void {
    this.following.get(runId)?.controller.abort();
    const controller = new AbortController();
    const stopped = followRun(this.store, runId, onEvent, { signal: controller.signal, intervalMs: this.pollMs, ...(since === undefined ? {} : { since }) });
    const entry = { controller, stopped };
    this.following.set(runId, entry);
    const done = () => {
      if (this.following.get(runId) === entry) this.following.delete(runId);
    };
    stopped.then(done, done);
  }

  /** A request to the ingress; an agent Restate does not serve gets an error that says how to serve it. */
  private async call(agent: string, agentFile: string | null, path: string, body: unknown): Promise<unknown> {
    try {
      return await restateRequest(this.ingress, 'POST', path, body);
    } catch (error) {
      if (error instanceof RestateRequestError && error.context['status'] === 404) {
        throw new KeelError(
          `Restate at ${this.ingress.base} does not serve the agent "${agent}": run \`keel serve --engine restate\` in the workspace that holds ${agentFile ?? 'its agent file'}.`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}
