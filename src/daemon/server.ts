import { resolve } from 'node:path';
import type { DaemonNotifications, DaemonRequests, InitializeResult } from '../protocol/daemon';
import { RpcPeer, type RequestHandlers } from '../protocol/jsonRpc';
import type { RunEvent } from '../runtime/agent/events';
import { loadAgentFile } from '../runtime/agent/loader';
import { isOwnerAlive } from '../runtime/agent/owner';
import { currentUser } from '../runtime/currentUser';
import { applyDeadlines } from '../runtime/approval/decide';
import { forecastAgentRun, forecastRun } from '../runtime/budget/forecast';
import { isRestateOwned } from '../runtime/engine/restate/naming';
import { KeelError, describeError } from '../runtime/errors';
import { Host } from '../runtime/host/host';
import { forkRun } from '../runtime/replay/fork';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { ancestorsOf, rootRunOf } from '../runtime/store/runTree';
import { agentFacts } from '../runtime/trace/agentFacts';
import { runFlags } from '../runtime/trace/runFlags';
import { runTrace } from '../runtime/trace/traceSettings';
import { KEEL_VERSION } from '../runtime/version';
import { DeadlineTimer } from './deadlineTimer';
import { GoldenService } from './goldenService';
import { decisionRequestFrom } from './decisionRequest';
import { documentHandlers } from './documentHandlers';
import { memoryHandlers } from './memoryHandlers';
import { projectHandlers } from './projectHandlers';
import { reviewHandlers } from './reviewHandlers';
import { spendReport } from './spend';
import { toApproval, toEditorAlert, toRun, toRunEvent, toStep } from './toProtocol';

type ExtensionRequests = Record<never, never>;
type ExtensionNotifications = Record<never, never>;

/**
 * The runtime process: serves the runtime to the extension over JSON-RPC on stdin/stdout. Stdout
 * carries only protocol lines; anything else written to it (an agent's console.log) goes to
 * stderr, which the extension shows in its log. Runs go through the host's engine, configured from
 * the workspace's keel.config.ts, the editor's settings and this process's environment.
 */
export function serve(): void {
  const writeProtocol = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

  let host: Host | undefined;
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const ready = (): Host => {
    if (!host) throw new KeelError('The runtime process was not initialized.');
    return host;
  };
  /** The host, when it may run the project's code: the folder is trusted and the configuration usable. */
  const runnable = (): Host => {
    const current = ready();
    current.usable();
    return current;
  };

  /** Every event of the runs here goes to the extension; a deadline they announce sets the timer. */
  const onEvent = (event: RunEvent): void => {
    peer.notify('runEvent', toRunEvent(event));
    if (event.type === 'approval_requested' && event.approval.deadline !== null) deadlines.wake(event.approval.deadline);
  };

  /**
   * Applies approval deadlines (rejecting or escalating what expired) and continues the trees whose
   * approvals they settled, by the engine's one rule; resolves with the next deadline still ahead.
   */
  const applyDeadlinesHere = async (): Promise<number | null> => {
    const { store, local, trusted } = ready();
    const now = Date.now();
    const settled = await applyDeadlines(store, now);
    // An escalation is sent where its policy says, through the alert outbox (not in Restricted Mode, which reads no keel.config.ts).
    if (trusted && settled.some((approval) => approval.status === 'pending')) await ready().alerts.scan();
    for (const approval of settled) {
      // In Restricted Mode the decision is recorded; the run goes on once the folder is trusted.
      if (approval.status === 'pending' || !trusted) continue;
      log(`approval ${approval.id} expired at its deadline and was rejected`);
      // A run on Restate goes on there: its deadlines reach it by its own timer.
      if (await rootRunOf(store, approval.runId).then(isRestateOwned, () => true)) continue;
      await local.continueAfter(approval.runId).catch((error: unknown) => log(`run ${approval.runId} could not go on after its approval expired: ${describeError(error)}`));
    }
    const ahead = (await store.listApprovals({ status: 'pending' }))
      .map((approval) => approval.deadline)
      .filter((deadline): deadline is number => deadline !== null && deadline > now);
    return ahead.length === 0 ? null : Math.min(...ahead);
  };
  const deadlines = new DeadlineTimer(applyDeadlinesHere, (error) => log(`could not apply approval deadlines: ${describeError(error)}`));

  const golden = new GoldenService((method, params) => peer.notify(method, params), () => ready());
  /** The store that holds a run: the workspace's, or a golden test store. */
  const storeOf = async (runId: string): Promise<CheckpointStore> => {
    const { store } = ready();
    return (await store.getRun(runId)) ? store : ((await golden.storeHolding(runId)) ?? store);
  };

  const handlers: RequestHandlers<DaemonRequests> = {
    ...memoryHandlers(() => ready().store),
    ...documentHandlers(() => ready().store, storeOf),
    ...reviewHandlers(() => ready().store),
    ...projectHandlers(ready),
    initialize: async (params) => {
      const settings = params.settings ?? {};
      if (host) {
        await host.reconfigure(settings, params.serverConsent);
      } else {
        host = await Host.open({
          cwd: params.workspaceRoot,
          settings,
          // The editor's runs are the developer's own: their traces show content unless it is turned off.
          defaults: { captureContent: true },
          onEvent,
          version: KEEL_VERSION,
          log,
          ...(params.trusted === false ? { trusted: false } : {}),
          ...(params.serverConsent ? { serverConsent: params.serverConsent } : {}),
        });
        if (params.trusted !== false) {
          // This process has an editor window: alerts for the editor channel are shown there.
          host.alerts.dispatcher.attachEditor((alert) => peer.notify('alert', toEditorAlert(alert)));
          host.onReviewsQueued((reviews) => peer.notify('reviewsQueued', { count: reviews.length, tools: [...new Set(reviews.map((review) => review.tool))] }));
          host.startBackground(alertPollMs());
        }
      }
      const started = host;
      // What was raised while no process could deliver it (an editor alert, a receiver that was down) goes now; not in Restricted Mode.
      if (params.trusted !== false) {
        void started.alerts
          .scan()
          .then(() => started.alerts.dispatcher.deliverDue())
          .catch((error: unknown) => log(`could not deliver alerts: ${describeError(error)}`));
      }
      const { store } = host;
      await store.markInterrupted(isOwnerAlive, Date.now());
      void deadlines.runNow();
      const result: InitializeResult = {
        version: KEEL_VERSION,
        nodeVersion: process.version,
        databasePath: store.location,
        runtimePath: __filename,
        interrupted: (await store.listRuns({ states: ['interrupted'] })).map(toRun),
      };
      return result;
    },
    startRun: async (params) => {
      const { local, config } = runnable();
      const model = params.model ?? config.model;
      return {
        runId: await local.start({
          agentFile: params.agentFile,
          input: params.input,
          ...(model ? { model } : {}),
          ...(config.runBudget ? { budget: config.runBudget } : {}),
          ...(params.threadId ? { threadId: params.threadId } : {}),
          ...(params.taskId ? { taskId: params.taskId } : {}),
        }),
      };
    },
    resumeRun: async ({ runId }) => ({ runId: await runnable().local.resume(runId) }),
    forkRun: async (params) => {
      const { store, local } = runnable();
      const run = await store.getRun(params.runId);
      if (!run?.agentFile) throw new KeelError(`Run ${params.runId} was not started from an agent file, so it cannot be forked.`);
      const fork = await forkRun(store, params, (await loadAgentFile(run.agentFile, { agent: run.agent })).agent);
      return { runId: await local.resume(fork.id) };
    },
    cancelRun: async ({ runId }) => {
      const { local } = ready();
      if (!local.executes(runId)) return { cancelled: false };
      await local.cancel(runId);
      return { cancelled: true };
    },
    // Like `keel runs` and `keel show`: a run whose process died since (a killed CLI) reads as interrupted.
    listRuns: async ({ limit }) => {
      const { store } = ready();
      await store.markInterrupted(isOwnerAlive, Date.now());
      return (await store.listRuns(limit === undefined ? {} : { limit })).map(toRun);
    },
    getRun: async ({ runId }) => {
      const store = await storeOf(runId);
      await store.markInterrupted(isOwnerAlive, Date.now());
      const run = await store.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${store.location}.`);
      return { run: toRun(run), steps: (await store.getSteps(runId)).map(toStep) };
    },
    getTrace: async ({ runId }) => {
      const store = await storeOf(runId);
      await store.markInterrupted(isOwnerAlive, Date.now());
      const run = await store.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${store.location}.`);
      const { trace } = ready();
      return { spans: await runTrace(store, runId, trace, agentFacts(run)), contentRecorded: trace.captureContent };
    },
    getFlagCounts: async ({ runIds }) => {
      const { store, trace } = ready();
      const counts: Record<string, number> = {};
      for (const runId of runIds) {
        const flags = await runFlags(store, runId, trace).catch(() => undefined);
        if (flags) counts[runId] = flags.length;
      }
      return { counts };
    },
    listApprovals: async ({ runId, status }) => {
      const { store } = ready();
      // A sub-agent's approval names the runs above it, so the editor shows it on its parent too.
      const under = new Map<string, { runId: string; agent: string }[]>();
      const ancestors = async (id: string) => {
        const run = await store.getRun(id);
        return run ? (await ancestorsOf(store, run)).map((parent) => ({ runId: parent.id, agent: parent.agent })) : [];
      };
      const approvals = await store.listApprovals({ runId, status });
      for (const approval of approvals) if (!under.has(approval.runId)) under.set(approval.runId, await ancestors(approval.runId));
      return approvals.map((approval) => {
        const above = under.get(approval.runId) ?? [];
        return above.length === 0 ? toApproval(approval) : { ...toApproval(approval), under: above };
      });
    },
    decide: async ({ approvalId, request }) => {
      const current = runnable();
      const decision = decisionRequestFrom(request);
      // As the CLI does: a decision that comes after the deadline finds the approval settled.
      await deadlines.runNow();
      const asked = await current.store.getApproval(approvalId);
      const onRestate = asked ? await rootRunOf(current.store, asked.runId).then(isRestateOwned, () => false) : false;
      // A run on Restate is told through its ingress, and goes on there.
      const engine = onRestate ? current.restate : current.local;
      const meta = { by: currentUser(), via: 'vscode', at: Date.now() } as const;
      try {
        const { approval, continued } = await engine.decide(approvalId, decision, meta);
        return { approval: toApproval(approval), resumed: continued !== undefined };
      } catch (error) {
        const recorded = await current.store.getApproval(approvalId);
        if (recorded?.status !== 'decided' || asked?.status !== 'pending') throw error;
        throw new KeelError(`The decision on ${approvalId} is recorded, but run ${recorded.runId} could not go on: ${describeError(error)}`, { cause: error });
      }
    },
    getSpend: async ({ runId }) => {
      const { store, local } = ready();
      await store.markInterrupted(isOwnerAlive, Date.now());
      const pools = ready()
        .pools()
        .map((pool) => pool.id);
      return spendReport(store, runId, { now: Date.now(), executingSince: local.executingSince(runId), pools });
    },
    forecast: async ({ agent, agentFile, model }) => {
      // An agent file is the project's code: loaded only where it may run (its name, model and budget are what a run would start with).
      const current = agentFile === undefined ? ready() : runnable();
      const { store, config } = current;
      const options = { model: model ?? config.model, budget: config.runBudget, pools: current.pools() };
      if (agentFile !== undefined) return forecastAgentRun(store, (await loadAgentFile(resolve(agentFile))).agent, options);
      if (agent === undefined) return null;
      const latest = (await store.listRuns({ limit: 1000 })).find((run) => run.agent === agent && run.parentRunId === null);
      return forecastRun(store, { ...options, agent, model: options.model ?? latest?.model ?? '' });
    },
    configure: async ({ settings }) => {
      await ready().reconfigure(settings);
      return null;
    },
    ...golden.handlers,
    shutdown: async () => {
      deadlines.dispose();
      await host?.local.cancelAll();
      await golden.close();
      await host?.close();
      // The MCP servers this process started stop with it (a watchdog ends them if it is killed instead).
      await (await import('../runtime/mcp/mcpManager.js')).sharedMcpManager().close();
      setImmediate(() => process.exit(0));
      return null;
    },
  };

  const peer = new RpcPeer<DaemonRequests, ExtensionRequests, ExtensionNotifications, DaemonNotifications>(
    (line) => writeProtocol(line),
    handlers,
  );

  // A misbehaving agent must not take the runtime process down: report and keep serving.
  process.on('uncaughtException', (error) => log(`uncaught error in agent code: ${error.stack ?? String(error)}`));
  process.on('unhandledRejection', (reason) => log(`unhandled rejection in agent code: ${reason instanceof Error ? reason.stack : String(reason)}`));

  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => peer.receive(chunk));
  process.stdin.on('end', () => {
    peer.close('The extension closed the connection.');
    process.exit(0);
  });
}

/** How often the runtime process looks for alerts to raise and deliver: KEEL_ALERT_POLL_MS, else every 15 s. */
function alertPollMs(): number {
  const given = Number(process.env['KEEL_ALERT_POLL_MS']);
  return Number.isFinite(given) && given >= 100 ? given : 15_000;
}
