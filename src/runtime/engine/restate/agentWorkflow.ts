import * as restate from '@restatedev/restate-sdk';
import { randomBytes } from 'node:crypto';
import type { Agent } from '../../agent/define';
import type { RunEvent } from '../../agent/events';
import { RESTATE_OWNER_PREFIX, isOwnerAlive } from '../../agent/owner';
import type { RuntimeFactory } from '../../host/runtimeFactory';
import { applyDeadlines } from '../../approval/decide';
import type { ApprovalRecord, CheckpointStore, Decision, RunState } from '../../store/checkpointStore';
import { DEFAULT_TOOL_RETRY, classifyError } from '../../effects/retry';
import { KeelError, describeError } from '../../errors';
import { approvalsOfTree } from '../../store/runTree';
import type { StartRequest } from '../engine';
import { workflowNameFor } from './naming';
import { RestateJournal } from './restateJournal';

/**
 * One agent as a Restate workflow, `keel.<agent name>`: a run is the workflow keyed by its run id.
 * Its `run` handler executes the run on Keel's runtime through a RestateJournal (every model call,
 * tool call and store write a journaled step), so that when the service process dies, Restate
 * runs the handler again on a live one and it goes on from its last journaled step. When the run
 * pauses for a person, the handler waits on one durable promise per pending approval, which
 * `decide` resolves once the decision is recorded in the store (`keel approve` does both), or
 * until the approval's deadline; then the run goes on.
 */

/** What starts a run: the body `keel run --engine restate` sends to the workflow's `run` handler. */
export type RunRequest = Pick<StartRequest, 'input' | 'model' | 'budget' | 'pools' | 'threadId' | 'taskId'>;

/** What the workflow answers with once the run has ended. */
export interface RunOutcome {
  readonly runId: string;
  readonly state: RunState;
  readonly result: string | null;
  readonly error: string | null;
}

export interface DecideRequest {
  readonly approvalId: string;
  readonly decision: Decision | null;
}

export interface AgentWorkflowHandlers {
  run(ctx: restate.WorkflowContext, request: RunRequest): Promise<RunOutcome>;
  decide(ctx: restate.WorkflowSharedContext, request: DecideRequest): Promise<{ readonly woke: boolean }>;
}

/** What every workflow of a service shares. */
export interface AgentWorkflowOptions {
  /** The store runs are recorded in, shared with the CLI and the editor. */
  readonly store: CheckpointStore;
  /** Builds the runtime of each execution, with the configuration of the host serving it (prices, pools, sandbox...). */
  readonly runtime: RuntimeFactory;
  /** A line for the service's log about an event of a run, if it deserves one. */
  readonly describe?: (event: RunEvent) => string | undefined;
  /** After a run has ended (say, to export its trace), once: a journaled step; a failure is logged. */
  readonly onEnded?: (runId: string) => Promise<void>;
}

/** The durable promise a run waits on for a decision on `approvalId`. */
function decisionPromise(approvalId: string): string {
  return `decision ${approvalId}`;
}

export function agentWorkflow(
  agent: Agent,
  agentFile: string,
  options: AgentWorkflowOptions,
): restate.WorkflowDefinition<string, AgentWorkflowHandlers> {
  const execute = async (ctx: restate.WorkflowContext, request: RunRequest): Promise<RunOutcome> => {
    const runId = ctx.key;
    const journal = await RestateJournal.open(ctx, options.store);
    // Each attempt of the handler executes the run afresh from its journal; one that died left the
    // run `running` under its own owner, which this attempt takes over (a write that changes no
    // decision, so it is made by every attempt rather than journaled).
    const owner = `${RESTATE_OWNER_PREFIX}${runId}/${randomBytes(6).toString('hex')}`;
    await options.store.claimRun(runId, owner, ['running'], Date.now());
    const store = journal.store();
    const runtime = options.runtime({
      store,
      now: journal.now,
      random: journal.random,
      sleep: journal.sleep,
      steps: journal.steps,
      owner,
      // Runs of this tree left running by an earlier attempt are interrupted: that attempt is over.
      isOwnerAlive: (candidate) => (candidate.startsWith(`${RESTATE_OWNER_PREFIX}${runId}/`) ? candidate === owner : isOwnerAlive(candidate)),
      pools: request.pools ?? [],
    });
    const describe = options.describe;
    const onEvent = describe
      ? (event: RunEvent) => {
          const line = describe(event);
          if (line !== undefined) ctx.console.info(line);
        }
      : undefined;
    let handle = await runtime.start(agent, {
      runId,
      input: request.input,
      agentFile,
      ...(request.model === undefined ? {} : { model: request.model }),
      ...(request.budget ? { budget: request.budget } : {}),
      ...(request.threadId === undefined ? {} : { threadId: request.threadId }),
      ...(request.taskId === undefined ? {} : { taskId: request.taskId }),
      ...(onEvent ? { onEvent } : {}),
    });
    // Cancelled through Restate: the execution under way stops, and the run ends `cancelled`.
    journal.onCancelled = () => handle.cancel();
    for (;;) {
      const stopped = await handle.done;
      if (stopped.state !== 'waiting_approval') {
        const onEnded = options.onEnded;
        if (onEnded) {
          const failure = await ctx.run('after the run', () => onEnded(runId).then(() => null, (error: unknown) => describeError(error)));
          if (failure !== null) ctx.console.warn(`${runId}: after the run: ${failure}`);
        }
        return { runId, state: stopped.state, result: stopped.result, error: stopped.error };
      }
      try {
        await waitForDecisions(ctx, journal, store, runId);
      } catch (error) {
        if (!(error instanceof restate.CancelledError)) throw error;
        const at = journal.now();
        const cancelled = await store.finishRun({ runId, state: 'cancelled', result: null, error: 'Cancelled through Restate while it waited for a decision.', endedAt: at, at });
        return { runId, state: cancelled.state, result: null, error: cancelled.error };
      }
      handle = await runtime.resume(agent, runId, onEvent ? { onEvent } : {});
    }
  };
  const handlers: AgentWorkflowHandlers = {
    run: (ctx, request) =>
      // Keel's own failures (a run that cannot start, a store that refuses a write) end the workflow
      // with their message; anything else, such as the database being unreachable, Restate tries again.
      execute(ctx, request).catch((error: unknown) => {
        if (error instanceof KeelError && classifyError(error, DEFAULT_TOOL_RETRY).class !== 'retry') throw new restate.TerminalError(describeError(error));
        throw error;
      }),

    async decide(ctx, { approvalId, decision }) {
      const promise = ctx.promise<DecideRequest>(decisionPromise(approvalId));
      if ((await promise.peek()) !== undefined) return { woke: false };
      await promise.resolve({ approvalId, decision });
      return { woke: true };
    },
  };
  return restate.workflow({ name: workflowNameFor(agent.name), handlers });
}

/**
 * Waits until no approval of the run's tree is pending: on each one's durable promise, or until its
 * deadline, when the deadline rule decides (rejecting, or escalating with a new deadline).
 */
async function waitForDecisions(ctx: restate.WorkflowContext, journal: RestateJournal, store: CheckpointStore, runId: string): Promise<void> {
  for (;;) {
    const pending: ApprovalRecord[] = await approvalsOfTree(store, runId, 'pending');
    const next = pending[0];
    if (!next) return;
    const decided = ctx.promise<DecideRequest>(decisionPromise(next.id)).get();
    if (next.deadline === null) {
      await decided;
    } else {
      try {
        await decided.orTimeout(Math.max(0, next.deadline - journal.now()));
      } catch (error) {
        if (!(error instanceof restate.TimeoutError)) throw error;
        await applyDeadlines(store, await journal.sync());
      }
    }
    await journal.sync();
  }
}
