/**
 * Keel's benchmark suite: `node out/bench/index.js [name ...]` runs every benchmark (or the named
 * ones) in sequence in this one process and prints what it measured. Figures come from here,
 * never from timed assertions in tests.
 */
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { type Benchmark, formatNumber, micros, now } from './harness';

/**
 * To add a benchmark, add one line here for a module that exports `benchmark`. Each module is
 * loaded only when its turn comes, so one benchmark's dependencies do not slow another's start.
 */
const BENCHMARKS: readonly (() => Promise<Benchmark>)[] = [
  () => import('./stepOverhead.js').then((module) => module.benchmark),
  () => import('./resumeLatency.js').then((module) => module.benchmark),
  () => import('./debugAdapterStart.js').then((module) => module.benchmark),
  () => import('./storeOpen.js').then((module) => module.benchmark),
  () => import('./toolSandbox.js').then((module) => module.benchmark),
  () => import('./timelineRender.js').then((module) => module.benchmark),
  () => import('./reservations.js').then((module) => module.benchmark),
  () => import('./budgets.js').then((module) => module.benchmark),
  () => import('./replay.js').then((module) => module.benchmark),
  () => import('./engines.js').then((module) => module.benchmark),
  () => import('./mcp.js').then((module) => module.benchmark),
  () => import('./sustained.js').then((module) => module.benchmark),
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const print = (line: string): void => console.log(line);
  const progress = (note: string): void => {
    process.stderr.write(`  … ${note}\n`);
  };

  const cpu = cpus()[0];
  print('Keel benchmarks');
  print(`node ${process.version} (V8 ${process.versions.v8}) on ${platform()} ${release()} ${arch()}`);
  print(
    `CPU ${cpu?.model.trim() ?? 'unknown'} · ${availableParallelism()} cores available (${cpus().length} listed)` +
      ` · ${formatNumber(totalmem() / 2 ** 30, 1)} GiB memory`,
  );
  print(`started ${new Date().toISOString()} · ${loadText()}`);

  const started = now();
  let ran = 0;
  for (const load of BENCHMARKS) {
    const benchmark = await load();
    if (wanted.length > 0 && !wanted.includes(benchmark.name)) continue;
    print('');
    print(`== ${benchmark.title} (${benchmark.name})`);
    const benchmarkStarted = now();
    await benchmark.run(print, progress);
    print(`(${benchmark.name} took ${formatNumber(micros(now() - benchmarkStarted) / 1e6, 1)} s)`);
    ran += 1;
  }
  if (ran === 0) {
    process.stderr.write(`No benchmark is named ${wanted.join(', ')}.\n`);
    process.exitCode = 2;
    return;
  }
  print('');
  print(`${ran} benchmark(s) in ${formatNumber(micros(now() - started) / 1e6, 1)} s · ${loadText()}`);
}

/** Other work on the machine skews absolute figures (ratios of interleaved variants less so), so say how busy it was. */
function loadText(): string {
  return `load average ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')} (1, 5, 15 min) on ${availableParallelism()} cores`;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
