/**
 * The engines side by side: the same agent file (a zero-latency scripted model, five model+tool
 * cycles, then an answer: 11 journaled steps) run by the local engine on SQLite and on
 * PostgreSQL, and by the Restate engine (a real restate-server, the agent served in this process
 * as `keel serve --engine restate` serves it) on SQLite and on PostgreSQL. Per-step overhead comes
 * from runs one at a time, timed by the store's own record of each run (creation to end);
 * throughput from many runs kept eight in flight, timed on the wall clock through the Engine
 * interface. PostgreSQL is a throwaway Debian server, as in the tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../src/runtime/engine/engine';
import { RestateEngine } from '../src/runtime/engine/restateEngine';
import { Host } from '../src/runtime/host/host';
import { serveAgents, type RestateService } from '../src/runtime/engine/restate/restateService';
import type { CheckpointStore, RunRecord } from '../src/runtime/store/checkpointStore';
import { openStore } from '../src/runtime/store/openStore';
import { findPostgres, startPostgres, type PostgresServer } from '../test/support/postgresServer';
import { findRestateServer, startRestateServer, type RestateServer } from '../test/support/restateServer';
import { type Benchmark, formatNumber, median, micros, now, table } from './harness';

const CYCLES = 5;
const STEPS = 2 * CYCLES + 1;
const WARMUP = 5;
/** Runs one at a time, for the per-step overhead. */
const SEQUENTIAL = 30;
const CONCURRENCY = 8;
/** Runs kept CONCURRENCY in flight, for the throughput. */
const THROUGHPUT_RUNS = 96;

const AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const lookup = defineTool({
  name: 'lookup',
  description: 'Look a key up.',
  args: z.object({ key: z.string() }),
  effect: 'none',
  run: ({ key }) => ({ key, value: 'value of ' + key }),
});

const note = defineTool({
  name: 'note',
  description: 'Write a note down.',
  args: z.object({ text: z.string() }),
  effect: 'idempotent',
  run: ({ text }) => ({ saved: true, length: text.length }),
});

export default defineAgent({
  name: 'bench-engines',
  instructions: 'Look things up and take notes as asked, then answer.',
  model: scriptedModel(({ turn }) => {
    if (turn >= ${CYCLES}) return 'Done after ${CYCLES} cycles.';
    return turn % 2 === 0
      ? { toolCalls: [{ name: 'lookup', args: { key: 'item-' + turn } }] }
      : { toolCalls: [{ name: 'note', args: { text: 'item-' + (turn - 1) + ' looked up' } }] };
  }),
  tools: [lookup, note],
  maxSteps: ${CYCLES + 1},
});
`;

interface Subject {
  readonly label: string;
  readonly engine: Engine;
  close(): Promise<void>;
}

interface Result {
  readonly label: string;
  readonly msPerRun: number;
  readonly msPerStep: number;
  readonly runsPerMinute: number;
}

async function runOnce(engine: Engine, agentFile: string, index: number): Promise<RunRecord> {
  const runId = await engine.start({ agentFile, input: `run ${index}` });
  const run = await engine.wait(runId, { timeoutMs: 60_000 });
  if (run.state !== 'completed' || run.stepCount !== STEPS) throw new Error(`run ${runId} ended ${run.state} after ${run.stepCount} steps: ${run.error ?? ''}`);
  return run;
}

async function measure(subject: Subject, agentFile: string, progress: (note: string) => void): Promise<Result> {
  progress(`${subject.label}: warming up`);
  for (let index = 0; index < WARMUP; index++) await runOnce(subject.engine, agentFile, index);
  progress(`${subject.label}: ${SEQUENTIAL} runs one at a time`);
  const durations: number[] = [];
  for (let index = 0; index < SEQUENTIAL; index++) {
    const run = await runOnce(subject.engine, agentFile, index);
    durations.push((run.endedAt ?? run.updatedAt) - run.createdAt);
  }
  progress(`${subject.label}: ${THROUGHPUT_RUNS} runs, ${CONCURRENCY} at a time`);
  let next = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < THROUGHPUT_RUNS) await runOnce(subject.engine, agentFile, next++);
    }),
  );
  const seconds = micros(now() - started) / 1e6;
  const msPerRun = median(durations);
  return { label: subject.label, msPerRun, msPerStep: msPerRun / STEPS, runsPerMinute: (THROUGHPUT_RUNS / seconds) * 60 };
}

function missingOf(found: object): string | undefined {
  return 'missing' in found && typeof found.missing === 'string' ? found.missing : undefined;
}

async function local(label: string, store: CheckpointStore): Promise<Subject> {
  const host = await Host.open({ cwd: tmpdir(), store });
  return {
    label,
    engine: host.local,
    close: async () => {
      await host.close();
      await store.close();
    },
  };
}

async function onRestate(label: string, server: RestateServer, store: CheckpointStore, agentFile: string): Promise<Subject> {
  const host = await Host.open({ cwd: tmpdir(), store });
  const service: RestateService = await serveAgents({ store, agentFiles: [agentFile], port: 0, adminUrl: server.adminUrl, runtime: host.runtime, log: () => undefined });
  // Followed through the store every 5 ms rather than the default 50, so that following adds little to what is measured.
  const engine = new RestateEngine(store, { ingressUrl: server.ingressUrl, adminUrl: server.adminUrl, pollMs: 5 });
  return {
    label,
    engine,
    close: async () => {
      await engine.close();
      await service.close();
      await store.close();
    },
  };
}

export const benchmark: Benchmark = {
  name: 'engines',
  title: `Engines: per-step overhead and throughput (zero-latency model, ${STEPS} steps per run, ${CONCURRENCY} runs in flight)`,
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-engines-'));
    const agentFile = join(dir, 'bench.agent.ts');
    writeFileSync(agentFile, AGENT);
    const postgresMissing = missingOf(findPostgres());
    const restateMissing = missingOf(findRestateServer());
    let postgres: PostgresServer | undefined;
    let restate: RestateServer | undefined;
    const results: Result[] = [];
    const skipped: string[] = [];
    let databases = 0;
    const postgresUrl = async (): Promise<string> => {
      postgres ??= await startPostgres();
      databases += 1;
      const { Client } = await import('pg');
      const client = new Client({ connectionString: postgres.url });
      await client.connect();
      await client.query(`CREATE SCHEMA bench_${databases}`);
      await client.end();
      return `${postgres.url}?options=${encodeURIComponent(`-c search_path=bench_${databases}`)}`;
    };
    const subjects: { label: string; missing?: string; make: () => Promise<Subject> }[] = [
      { label: 'local + SQLite', make: async () => local('local + SQLite', await openStore(join(dir, 'local.db'))) },
      { label: 'local + PostgreSQL', ...(postgresMissing ? { missing: postgresMissing } : {}), make: async () => local('local + PostgreSQL', await openStore(await postgresUrl())) },
      {
        label: 'Restate + SQLite',
        ...(restateMissing ? { missing: restateMissing } : {}),
        make: async () => {
          restate ??= await startRestateServer();
          return onRestate('Restate + SQLite', restate, await openStore(join(dir, 'restate.db')), agentFile);
        },
      },
      {
        label: 'Restate + PostgreSQL',
        ...(restateMissing || postgresMissing ? { missing: restateMissing ?? postgresMissing ?? '' } : {}),
        make: async () => {
          restate ??= await startRestateServer();
          return onRestate('Restate + PostgreSQL', restate, await openStore(await postgresUrl()), agentFile);
        },
      },
    ];
    try {
      for (const { label, missing, make } of subjects) {
        if (missing !== undefined) {
          skipped.push(`${label}: skipped, ${missing}`);
          continue;
        }
        const subject = await make();
        try {
          results.push(await measure(subject, agentFile, progress));
        } finally {
          await subject.close();
        }
      }
    } finally {
      await restate?.stop();
      postgres?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const [first] = results;
    for (const line of table(
      ['engine', 'ms per run (p50)', 'ms per step', `runs/min (${CONCURRENCY} in flight)`, 'vs local + SQLite'],
      results.map((result) => [
        result.label,
        formatNumber(result.msPerRun, 1),
        formatNumber(result.msPerStep, 2),
        formatNumber(result.runsPerMinute, 0),
        first ? `${formatNumber(result.msPerStep / first.msPerStep, 1)}x per step` : '',
      ]),
    )) {
      print(line);
    }
    for (const line of skipped) print(line);
    print(
      `ms per run: the median over ${SEQUENTIAL} runs one at a time, from the run's creation to its end as the store recorded them; ms per step divides it by the ${STEPS} steps.`,
    );
    print(`runs/min: ${THROUGHPUT_RUNS} runs through the Engine interface (start, then wait on the store), ${CONCURRENCY} in flight at any time, on the wall clock.`);
    print('On Restate, every model call, tool call and store write of a run is a journaled ctx.run step.');
  },
};
