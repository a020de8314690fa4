import { join } from 'node:path';
import type { Agent } from '../../src/runtime/agent/define';
import { Runtime, type RuntimeOptions } from '../../src/runtime/agent/runtime';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { loadTraceSource, type TraceSource } from '../../src/runtime/trace/buildTrace';
import { useTempDirs } from './tempDir';

/** Runs agents in this process against a fresh SQLite store per test, and reads them back as trace sources. */
export interface TraceRuns {
  readonly store: () => SqliteStore;
  /** Runs `agent` to its stop and returns what the store holds of the run. */
  run(agent: Agent, input?: string, options?: Omit<RuntimeOptions, 'store'>): Promise<{ run: RunRecord; source: TraceSource }>;
}

/** Registers hooks in the calling `describe`. The clock advances 10 ms per reading, so timings are predictable. */
export function useTraceRuns(): TraceRuns {
  const tempDir = useTempDirs();
  let store: SqliteStore | undefined;
  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-trace-'), 'keel.db'));
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });
  const current = (): SqliteStore => {
    if (!store) throw new Error('no store outside a test');
    return store;
  };
  return {
    store: current,
    async run(agent, input = 'go', options = {}) {
      let clock = 1_000_000;
      const runtime = new Runtime({ now: () => (clock += 10), sleep: () => Promise.resolve(), random: () => 0.5, ...options, store: current() });
      const handle = await runtime.start(agent, { input });
      const run = await handle.done;
      return { run, source: await loadTraceSource(current(), run.id) };
    },
  };
}
