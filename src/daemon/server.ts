import { resolve } from 'node:path';
import type { DaemonNotifications, DaemonRequests, InitializeResult } from '../protocol/daemon';
import { RpcPeer, type RequestHandlers } from '../protocol/jsonRpc';
import type { RunEvent } from '../runtime/agent/events';
import { loadAgentFile } from '../runtime/agent/loader';
import { isOwnerAlive } from '../runtime/agent/owner';
import { Runtime, currentUser, type RunHandle } from '../runtime/agent/runtime';
import { applyDeadlines, decide } from '../runtime/approval/decide';
import { costOptions, type CostSettings } from '../runtime/budget/config';
import { sandboxOptionsFromEnv } from '../runtime/sandbox/toolRunner';
import { forecast } from '../runtime/budget/forecast';
import { CircuitBreakers } from '../runtime/effects/circuitBreaker';
import { KeelError, describeError } from '../runtime/errors';
import type { ApprovalRecord, CheckpointStore } from '../runtime/store/checkpointStore';
import { openStore } from '../runtime/store/openStore';
import { normalizeStoreLocation } from '../runtime/store/storeLocation';
import { agentFacts } from '../runtime/trace/agentFacts';
import { buildTrace, loadTraceSource, traceFlags } from '../runtime/trace/buildTrace';
import { exportRunTrace, runTrace, traceOptions, traceSettings, type TraceSettings, type TraceSettingsInput } from '../runtime/trace/traceSettings';
import { forkRun } from '../runtime/replay/fork';
import { rootRunOf, treeToContinue } from '../runtime/store/runTree';
import { RestateEngine } from '../runtime/engine/restateEngine';
import { isRestateOwned } from '../runtime/engine/restate/naming';
import { ingressUrlFrom } from '../runtime/engine/restate/restateHttp';
import { databasePathFor } from '../runtime/workspace';
import { KEEL_VERSION } from '../version';
import { DeadlineTimer } from './deadlineTimer';
import { GoldenService } from './goldenService';
import { decisionRequestFrom } from './decisionRequest';
import { memoryHandlers } from './memoryHandlers';
import { spendReport } from './spend';

type ExtensionRequests = Record<never, never>;
type ExtensionNotifications = Record<never, never>;

/**
 * The runtime process: serves the runtime to the extension over JSON-RPC on stdin/stdout. Stdout
 * carries only protocol lines; anything else written to it (an agent's console.log) goes to
 * stderr, which the extension shows in its log.
 */
export function serve(): void {
  const writeProtocol = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

  let store: CheckpointStore | undefined;
  /** Where the store is, as it was asked for: a file path or a connection string (with its password). */
  let storeTarget: string | undefined;
  let runtime: Runtime | undefined;
  const active = new Map<string, RunHandle>();
  /** When this process began executing each run it executes now: the start of its active time here. */
  const executing = new Map<string, number>();
  let cost: CostSettings = {};
  let runtimeKey = '';
  const breakers = new CircuitBreakers();
  /**
   * The Runtime for the cost settings and today's date (the daily pool is per day), made again
   * when either changed; runs under way keep theirs. Throws when the settings are not usable.
   */
  const currentRuntime = (s: CheckpointStore): Runtime => {
    const now = Date.now();
    const key = `${JSON.stringify(cost)} ${new Date(now).toISOString().slice(0, 10)}`;
    if (!runtime || key !== runtimeKey) {
      runtime = new Runtime({ store: s, breakers, ...costOptions(cost, now), sandbox: sandboxOptionsFromEnv() });
      runtimeKey = key;
    }
    return runtime;
  };
  /** The shared pools runs started here draw on now, without their `pool:` prefix. */
  const pools = (): string[] => {
    try {
      return costOptions(cost).pools.map((pool) => pool.id);
    } catch {
      return [];
    }
  };
  let traceInput: TraceSettingsInput = {};
  // Read again for each use, so a bad KEEL_REDACT fails the request that needs it, not the process.
  const settings = (): TraceSettings => traceSettings({ ...traceInput, version: KEEL_VERSION });

  /** Exports an ended run's trace when an OTLP endpoint is configured; failures are logged, never fatal. */
  const exportTrace = async (runId: string): Promise<void> => {
    try {
      const current = settings();
      if (!current.otlp || !store) return;
      const run = await store.getRun(runId);
      if (!run) return;
      if (await exportRunTrace(store, runId, current, agentFacts(run))) {
        process.stderr.write(`exported the trace of run ${runId} to ${current.redactor.redact(current.otlp.url)}\n`);
      }
    } catch (error) {
      process.stderr.write(`could not export the trace of run ${runId}: ${describeError(error)}\n`);
    }
  };

  const ready = (): { store: CheckpointStore; readonly runtime: Runtime } => {
    const s = store;
    if (!s) throw new KeelError('The runtime process was not initialized.');
    return {
      store: s,
      get runtime() {
        return currentRuntime(s);
      },
    };
  };

  const track = (handle: RunHandle): { runId: string } => {
    active.set(handle.runId, handle);
    executing.set(handle.runId, Date.now());
    void handle.done.then(
      () => {
        active.delete(handle.runId);
        executing.delete(handle.runId);
        return exportTrace(handle.runId);
      },
      (error: unknown) => {
        active.delete(handle.runId);
        executing.delete(handle.runId);
        process.stderr.write(`run ${handle.runId} could not be recorded: ${describeError(error)}\n`);
      },
    );
    return { runId: handle.runId };
  };

  /** Every event of the runs here goes to the extension; a deadline they announce sets the timer. */
  const onEvent = (event: RunEvent): void => {
    peer.notify('runEvent', event);
    if (event.type === 'approval_requested' && event.approval.deadline !== null) deadlines.wake(event.approval.deadline);
  };

  /**
   * Continues a run's tree in this process from its checkpoint, from the tree's root (a sub-agent's
   * run goes on as its parent replays to it), with the agent loaded again from its file.
   */
  const resumeHere = async (runId: string): Promise<{ runId: string }> => {
    const { runtime: rt, store: s } = ready();
    const run = await rootRunOf(s, runId);
    if (!run.agentFile) throw new KeelError(`Run ${run.id} was not started from an agent file, so it cannot be resumed here.`);
    const { agent } = await loadAgentFile(run.agentFile, { agent: run.agent });
    return track(await rt.resume(agent, run.id, { onEvent }));
  };

  /** After a decision: the run's tree goes on here, by the one rule (see treeToContinue). */
  const continueAfter = async (approval: ApprovalRecord): Promise<boolean> => {
    const { store: s } = ready();
    const root = await treeToContinue(s, approval.runId);
    // A run on Restate goes on there: its decisions reach it through Restate, its deadlines by its own timer.
    if (!root || isRestateOwned(root) || active.has(root.id)) return false;
    await resumeHere(root.id);
    return true;
  };

  /**
   * Applies approval deadlines (rejecting or escalating what expired) and resumes the runs whose
   * approvals they settled; resolves with the next deadline still ahead.
   */
  const applyDeadlinesHere = async (): Promise<number | null> => {
    const { store: s } = ready();
    const now = Date.now();
    for (const approval of await applyDeadlines(s, now)) {
      if (approval.status === 'pending') continue;
      process.stderr.write(`approval ${approval.id} expired at its deadline and was rejected\n`);
      await continueAfter(approval).catch((error: unknown) =>
        process.stderr.write(`run ${approval.runId} could not go on after its approval expired: ${describeError(error)}\n`),
      );
    }
    const ahead = (await s.listApprovals({ status: 'pending' }))
      .map((approval) => approval.deadline)
      .filter((deadline): deadline is number => deadline !== null && deadline > now);
    return ahead.length === 0 ? null : Math.min(...ahead);
  };
  const deadlines = new DeadlineTimer(applyDeadlinesHere, (error) =>
    process.stderr.write(`could not apply approval deadlines: ${describeError(error)}\n`),
  );

  const golden = new GoldenService((method, params) => peer.notify(method, params), () => cost);
  /** The store that holds a run: the workspace's, or a golden test store. */
  const storeOf = async (runId: string): Promise<CheckpointStore> => {
    const { store: s } = ready();
    return (await s.getRun(runId)) ? s : ((await golden.storeHolding(runId)) ?? s);
  };

  const handlers: RequestHandlers<DaemonRequests> = {
    ...memoryHandlers(() => ready().store),
    initialize: async (params) => {
      const target = normalizeStoreLocation(params.databasePath ?? databasePathFor(params.workspaceRoot));
      if (store && storeTarget !== target) throw new KeelError('The runtime process is already serving another database.');
      if (!store) {
        store = await openStore(target);
        storeTarget = target;
      }
      traceInput = params.trace ?? {};
      cost = params.cost ?? {};
      await store.markInterrupted(isOwnerAlive, Date.now());
      void deadlines.runNow();
      const result: InitializeResult = {
        version: KEEL_VERSION,
        nodeVersion: process.version,
        databasePath: store.location,
        runtimePath: __filename,
        interrupted: await store.listRuns({ states: ['interrupted'] }),
      };
      return result;
    },
    startRun: async (params) => {
      const { runtime: rt } = ready();
      const { agent, file } = await loadAgentFile(params.agentFile);
      return track(
        await rt.start(agent, {
          input: params.input,
          agentFile: file,
          ...(params.model ? { model: params.model } : {}),
          ...(params.threadId ? { threadId: params.threadId } : {}),
          ...(params.taskId ? { taskId: params.taskId } : {}),
          onEvent,
        }),
      );
    },
    resumeRun: ({ runId }) => resumeHere(runId),
    forkRun: async (params) => {
      const { store: s } = ready();
      const run = await s.getRun(params.runId);
      if (!run?.agentFile) throw new KeelError(`Run ${params.runId} was not started from an agent file, so it cannot be forked.`);
      const fork = await forkRun(s, params, (await loadAgentFile(run.agentFile, { agent: run.agent })).agent);
      return resumeHere(fork.id);
    },
    cancelRun: ({ runId }) => {
      const handle = active.get(runId);
      handle?.cancel();
      return Promise.resolve({ cancelled: handle !== undefined });
    },
    // Like `keel runs` and `keel show`: a run whose process died since (a killed CLI) reads as interrupted.
    listRuns: async ({ limit }) => {
      const { store: s } = ready();
      await s.markInterrupted(isOwnerAlive, Date.now());
      return s.listRuns(limit === undefined ? {} : { limit });
    },
    getRun: async ({ runId }) => {
      const s = await storeOf(runId);
      await s.markInterrupted(isOwnerAlive, Date.now());
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      return { run, steps: await s.getSteps(runId) };
    },
    getTrace: async ({ runId }) => {
      const s = await storeOf(runId);
      await s.markInterrupted(isOwnerAlive, Date.now());
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      return { spans: await runTrace(s, runId, settings(), agentFacts(run)) };
    },
    getFlagCounts: async ({ runIds }) => {
      const { store: s } = ready();
      const current = settings();
      const counts: Record<string, number> = {};
      for (const runId of runIds) {
        const source = await loadTraceSource(s, runId).catch(() => undefined);
        if (!source) continue;
        counts[runId] = traceFlags(buildTrace(source, traceOptions(current, agentFacts(source.run)))).length;
      }
      return { counts };
    },
    listApprovals: ({ runId, status }) => ready().store.listApprovals({ runId, status }),
    decide: async ({ approvalId, request }) => {
      const { store: s } = ready();
      const decision = decisionRequestFrom(request);
      // As the CLI does: a decision that comes after the deadline finds the approval settled.
      await deadlines.runNow();
      const asked = await s.getApproval(approvalId);
      const onRestate = asked ? await rootRunOf(s, asked.runId).then(isRestateOwned, () => false) : false;
      if (onRestate) {
        // Recorded, then passed to the run's workflow through the Restate ingress (KEEL_RESTATE_URL).
        const approval = await new RestateEngine(s, { ingressUrl: ingressUrlFrom() }).decide(approvalId, decision, { by: currentUser(), via: 'vscode', at: Date.now() });
        return { approval, resumed: true };
      }
      const approval = await decide(s, approvalId, decision, { by: currentUser(), via: 'vscode', at: Date.now() });
      try {
        return { approval, resumed: await continueAfter(approval) };
      } catch (error) {
        throw new KeelError(`The decision on ${approvalId} is recorded, but run ${approval.runId} could not go on: ${describeError(error)}`, {
          cause: error,
        });
      }
    },
    getSpend: async ({ runId }) => {
      const { store: s } = ready();
      await s.markInterrupted(isOwnerAlive, Date.now());
      return spendReport(s, runId, { now: Date.now(), executingSince: executing.get(runId), pools: pools() });
    },
    forecast: async ({ agent, agentFile }) => {
      const { store: s } = ready();
      const file = agentFile === undefined ? undefined : resolve(agentFile);
      // Sub-agent runs record their parent's file: the agent of a file is that of its top-level runs.
      const name = agent ?? (file ? (await s.listRuns({ limit: 1000 })).find((run) => run.agentFile === file && run.parentRunId === null)?.agent : undefined);
      return { agent: name ?? null, forecast: name ? ((await forecast(s, name)) ?? null) : null };
    },
    configure: (params) => {
      cost = params.cost;
      return Promise.resolve(null);
    },
    ...golden.handlers,
    shutdown: async () => {
      deadlines.dispose();
      for (const handle of active.values()) handle.cancel();
      await Promise.allSettled([...active.values()].map((handle) => handle.done));
      await golden.close();
      await store?.close();
      setImmediate(() => process.exit(0));
      return null;
    },
  };

  const peer = new RpcPeer<DaemonRequests, ExtensionRequests, ExtensionNotifications, DaemonNotifications>(
    (line) => writeProtocol(line),
    handlers,
  );

  // A misbehaving agent must not take the runtime process down: report and keep serving.
  process.on('uncaughtException', (error) => process.stderr.write(`uncaught error in agent code: ${error.stack ?? error}\n`));
  process.on('unhandledRejection', (reason) =>
    process.stderr.write(`unhandled rejection in agent code: ${reason instanceof Error ? reason.stack : String(reason)}\n`),
  );

  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => peer.receive(chunk));
  process.stdin.on('end', () => {
    peer.close('The extension closed the connection.');
    process.exit(0);
  });
}
