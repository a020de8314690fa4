import { resolve } from 'node:path';
import type { DaemonNotifications, DaemonRequests, InitializeResult } from '../protocol/daemon';
import { RpcPeer, type RequestHandlers } from '../protocol/jsonRpc';
import { loadAgentFile } from '../runtime/agent/loader';
import { isOwnerAlive } from '../runtime/agent/owner';
import { Runtime, type RunHandle } from '../runtime/agent/runtime';
import { KeelError, describeError } from '../runtime/errors';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { openSqliteStore } from '../runtime/store/sqliteStore';
import { databasePathFor } from '../runtime/workspace';
import { KEEL_VERSION } from '../version';

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
  let runtime: Runtime | undefined;
  const active = new Map<string, RunHandle>();

  const ready = (): { store: CheckpointStore; runtime: Runtime } => {
    if (!store || !runtime) throw new KeelError('The runtime process was not initialized.');
    return { store, runtime };
  };

  const track = (handle: RunHandle): { runId: string } => {
    active.set(handle.runId, handle);
    void handle.done.then(
      () => active.delete(handle.runId),
      (error: unknown) => {
        active.delete(handle.runId);
        process.stderr.write(`run ${handle.runId} could not be recorded: ${describeError(error)}\n`);
      },
    );
    return { runId: handle.runId };
  };

  const handlers: RequestHandlers<DaemonRequests> = {
    initialize: async (params) => {
      const databasePath = resolve(params.databasePath ?? databasePathFor(params.workspaceRoot));
      if (store && store.location !== databasePath) throw new KeelError('The runtime process is already serving another database.');
      store ??= openSqliteStore(databasePath);
      runtime ??= new Runtime({ store });
      await store.markInterrupted(isOwnerAlive, Date.now());
      const result: InitializeResult = {
        version: KEEL_VERSION,
        nodeVersion: process.version,
        databasePath,
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
          onEvent: (event) => peer.notify('runEvent', event),
        }),
      );
    },
    resumeRun: async ({ runId }) => {
      const { runtime: rt, store: s } = ready();
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      if (!run.agentFile) throw new KeelError(`Run ${runId} was not started from an agent file, so it cannot be resumed here.`);
      const { agent } = await loadAgentFile(run.agentFile);
      return track(await rt.resume(agent, runId, { onEvent: (event) => peer.notify('runEvent', event) }));
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
      const { store: s } = ready();
      await s.markInterrupted(isOwnerAlive, Date.now());
      const run = await s.getRun(runId);
      if (!run) throw new KeelError(`No run ${runId} in ${s.location}.`);
      return { run, steps: await s.getSteps(runId) };
    },
    listApprovals: ({ runId, status }) => ready().store.listApprovals({ runId, status }),
    shutdown: async () => {
      for (const handle of active.values()) handle.cancel();
      await Promise.allSettled([...active.values()].map((handle) => handle.done));
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
