import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DaemonNotifications, DaemonRequests, GoldenFileCases } from '../protocol/daemon';
import type { RequestHandlers } from '../protocol/jsonRpc';
import type { Host } from '../runtime/host/host';
import { describeError } from '../runtime/errors';
import { GoldenFileError, parseGoldenFile } from '../runtime/golden/goldenFile';
import { runGoldenFile } from '../runtime/golden/runGolden';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { openSqliteStore } from '../runtime/store/sqliteStore';
import { toGoldenEvent, toGoldenFileReport } from './toProtocol';

type GoldenRequests = Pick<DaemonRequests, 'listGoldenCases' | 'runGolden' | 'cancelGolden'>;

/**
 * Golden tests in the runtime process: lists a file's cases for the Test Explorer and runs them,
 * reporting each case as it ends. Case runs go to their own stores (the configured `golden.database`
 * file, or memory), never among the workspace's runs; their traces are still found by run id.
 */
export class GoldenService {
  private readonly stores = new Map<string, CheckpointStore>();
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly notify: <M extends keyof DaemonNotifications>(method: M, params: DaemonNotifications[M]) => void,
    private readonly host: () => Host,
  ) {}

  readonly handlers: RequestHandlers<GoldenRequests> = {
    listGoldenCases: ({ file }) => Promise.resolve(listCases(file)),
    runGolden: async ({ token, file, cases, mode }) => {
      // An untrusted folder's agents are never loaded.
      this.host().usable();
      const controller = new AbortController();
      this.running.set(token, controller);
      try {
        const report = await runGoldenFile(resolve(file), {
          store: this.store(this.host().config.goldenDatabase),
          mode,
          // A live run asks the configured model (keel.config.ts, KEEL_MODEL, keel.model), else the agent's own.
          ...(mode === 'live' && this.host().config.model !== undefined ? { model: this.host().config.model } : {}),
          ...(this.host().config.runBudget ? { budget: this.host().config.runBudget } : {}),
          ...(cases ? { cases } : {}),
          runtime: this.host().runtime,
          signal: controller.signal,
          onEvent: (event) => this.notify('goldenEvent', { token, event: toGoldenEvent(event) }),
        });
        return toGoldenFileReport(report);
      } finally {
        this.running.delete(token);
      }
    },
    cancelGolden: ({ token }) => {
      const controller = this.running.get(token);
      controller?.abort(new Error('Cancelled from the Test Explorer.'));
      return Promise.resolve({ cancelled: controller !== undefined });
    },
  };

  /** The golden store that holds a run, if any does. */
  async storeHolding(runId: string): Promise<CheckpointStore | undefined> {
    for (const store of this.stores.values()) if (await store.getRun(runId)) return store;
    return undefined;
  }

  async close(): Promise<void> {
    for (const controller of this.running.values()) controller.abort(new Error('The runtime process is shutting down.'));
    await Promise.allSettled([...this.stores.values()].map((store) => store.close()));
    this.stores.clear();
  }

  private store(databasePath: string): CheckpointStore {
    const key = databasePath === ':memory:' ? databasePath : resolve(databasePath);
    let store = this.stores.get(key);
    if (!store) {
      store = openSqliteStore(key);
      this.stores.set(key, store);
    }
    return store;
  }

}

function listCases(file: string): GoldenFileCases {
  try {
    const golden = parseGoldenFile(readFileSync(file, 'utf8'), file);
    return {
      file,
      agentFile: golden.agentFile,
      cases: golden.cases.map(({ name, tags, input, range }) => ({ name, tags, input, range })),
      error: null,
    };
  } catch (error) {
    const located = error instanceof GoldenFileError;
    return {
      file,
      agentFile: null,
      cases: [],
      error: {
        message: located ? error.reason : describeError(error),
        line: located ? (error.line ?? null) : null,
        column: located ? (error.column ?? null) : null,
      },
    };
  }
}
