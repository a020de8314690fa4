/**
 * Reservation throughput under contention: reserve-then-settle pairs per second on ONE shared
 * budget, as model calls make them (the atomic check of every budget's limit, the hold, the
 * reservation row; then the settlement that releases the rest). In one process with 1, 8 and 64
 * calls in flight, and in 2 and 4 processes sharing the SQLite file (8 in flight in each).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CheckpointStore } from '../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../src/runtime/store/sqliteStore';
import { type Benchmark, formatNumber, micros, now, table } from './harness';

const BUDGET_ID = 'pool:bench';
const DURATION_MS = 2500;
const IN_PROCESS = [1, 8, 64] as const;
const PROCESSES = [2, 4] as const;
const PER_PROCESS = 8;
/** A model call's worst case and what it used, in the sizes of a small chat call. */
const RESERVED = { inputTokens: 1500, outputTokens: 1000, usd: 0.000825 };
const ACTUAL = { inputTokens: 1200, outputTokens: 300, usd: 0.00036 };

interface Result {
  readonly pairs: number;
  /** Reservations refused because the budget was full (none here: the limit is far off). */
  readonly refused: number;
  /** Transitions that failed for another reason, such as SQLITE_BUSY between processes. */
  readonly errors: number;
  readonly firstError: string | null;
  /** Microseconds each reserve transition took, as its caller waited for it. */
  readonly reserveUs: number[];
  readonly elapsedMs: number;
}

/** A fresh database with the shared budget in it. */
function prepare(db: string): void {
  const store = openSqliteStore(db);
  void store.ensureBudget({ id: BUDGET_ID, kind: 'pool', limits: { usd: 1e9, tokens: 1e15 }, at: Date.now() });
  void store.close();
}

/**
 * `concurrency` loops, each making a run and then, until `durationMs` has passed, reserving on the
 * shared budget, yielding (the model call, in which the others go on), and settling.
 */
async function hammer(store: CheckpointStore, tag: string, concurrency: number, durationMs: number): Promise<Result> {
  const reserveUs: number[] = [];
  let pairs = 0;
  let refused = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = now();
  const deadline = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      const runId = `run_bench_${tag}_${loop}`;
      await store.createRun({
        id: runId,
        agent: 'bench',
        agentFile: null,
        model: 'openai:gpt-4o-mini',
        input: '',
        traceId: '0'.repeat(32),
        owner: `bench/${process.pid}/${tag}`,
        createdAt: Date.now(),
      });
      for (let seq = 1; Date.now() < deadline; seq++) {
        const id = `${runId}:${seq}:1`;
        const at = Date.now();
        const before = now();
        try {
          await store.transition({ reserve: { id, runId, seq, model: 'openai:gpt-4o-mini', budgetIds: [BUDGET_ID], amounts: RESERVED, at } });
        } catch (error) {
          if (error instanceof Error && error.name === 'BudgetExceededError') refused += 1;
          else {
            errors += 1;
            firstError ??= error instanceof Error ? error.message : String(error);
          }
          continue;
        }
        reserveUs.push(micros(now() - before));
        await new Promise((resolve) => setImmediate(resolve));
        try {
          await store.transition({ close: { id, actual: ACTUAL, at: Date.now() } });
          pairs += 1;
        } catch (error) {
          errors += 1;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  return { pairs, refused, errors, firstError, reserveUs, elapsedMs: micros(now() - started) / 1000 };
}

/** `count` processes running `hammer` on the same file, started together. */
async function inProcesses(db: string, count: number, progress: (note: string) => void): Promise<Result[]> {
  const children = Array.from({ length: count }, (_, index) =>
    spawn(process.execPath, [__filename, 'worker', db, `p${count}_${index}`, String(PER_PROCESS), String(DURATION_MS)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const lines = children.map((child) => createInterface({ input: child.stdout })[Symbol.asyncIterator]());
  const next = async (index: number): Promise<string> => {
    const line = await lines[index]?.next();
    if (!line || line.done) throw new Error(`bench worker ${index} exited early`);
    return line.value;
  };
  await Promise.all(children.map((_, index) => next(index)));
  progress(`${count} processes ready; go`);
  for (const child of children) child.stdin.write('go\n');
  const results = await Promise.all(children.map(async (_, index) => JSON.parse(await next(index)) as Result));
  for (const child of children) child.stdin.end();
  return results;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

function row(name: string, results: readonly Result[]): string[] {
  const pairs = results.reduce((sum, result) => sum + result.pairs, 0);
  const seconds = Math.max(...results.map((result) => result.elapsedMs)) / 1000;
  const latencies = results.flatMap((result) => result.reserveUs);
  const errors = results.reduce((sum, result) => sum + result.errors, 0);
  return [
    name,
    formatNumber(pairs / seconds, 0),
    formatNumber(percentile(latencies, 0.5), 0),
    formatNumber(percentile(latencies, 0.99), 0),
    String(results.reduce((sum, result) => sum + result.refused, 0)),
    String(errors),
  ];
}

export const benchmark: Benchmark = {
  name: 'reservations',
  title: 'Reservation throughput on one shared budget (reserve + settle pairs)',
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-reservations-'));
    try {
      const rows: string[][] = [];
      const failures: string[] = [];
      for (const concurrency of IN_PROCESS) {
        const db = join(dir, `in-process-${concurrency}.db`);
        prepare(db);
        progress(`1 process, ${concurrency} in flight`);
        const store = openSqliteStore(db);
        const result = await hammer(store, `c${concurrency}`, concurrency, DURATION_MS);
        await store.close();
        rows.push(row(`1 process, ${concurrency} in flight`, [result]));
        if (result.firstError) failures.push(`1 process, ${concurrency} in flight: ${result.firstError}`);
      }
      for (const count of PROCESSES) {
        const db = join(dir, `processes-${count}.db`);
        prepare(db);
        progress(`${count} processes, ${PER_PROCESS} in flight each`);
        const results = await inProcesses(db, count, progress);
        rows.push(row(`${count} processes, ${PER_PROCESS} in flight each`, results));
        const first = results.find((result) => result.firstError)?.firstError;
        if (first) failures.push(`${count} processes: ${first}`);
      }
      print(`${DURATION_MS / 1000} s per setup; one SQLite file (WAL, synchronous=NORMAL) per setup; every pair checks and holds the one budget row`);
      for (const line of table(['setup', 'pairs/s', 'reserve p50 µs', 'reserve p99 µs', 'refused', 'errors'], rows)) print(line);
      for (const failure of failures) print(`first error: ${failure}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** A worker process: `node reservations.js worker <db> <tag> <concurrency> <ms>`; prints `ready`, waits for `go`, prints its result. */
async function worker(args: readonly string[]): Promise<void> {
  const [db, tag, concurrency, durationMs] = args;
  if (!db || !tag) throw new Error('usage: reservations.js worker <db> <tag> <concurrency> <ms>');
  const store = openSqliteStore(db);
  const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write('ready\n');
  await input.next();
  const result = await hammer(store, tag, Number(concurrency), Number(durationMs));
  await store.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module && process.argv[2] === 'worker') {
  worker(process.argv.slice(3)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
