/**
 * A runtime doing back-to-back runs for two minutes (KEEL_BENCH_SUSTAINED_S seconds to change it),
 * as a busy runtime process does: does a model+tool cycle cost as much at the end as at the start?
 * Everything the runtime keeps per dependency (circuit breakers, counted in buckets and shared
 * through the store) must not grow with the calls made. Prints the cost per cycle of each 10 s
 * slice, and the last slice against the first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../src/runtime/host/host';
import { defineAgent, defineTool, scriptedModel, z } from '../src/runtime/index';
import { type Benchmark, formatNumber, formatRatio, median, micros, now, table } from './harness';

const SECONDS = Number(process.env['KEEL_BENCH_SUSTAINED_S'] ?? 120);
const SLICE_S = 10;
const CYCLES = 5;

const lookup = defineTool({
  name: 'lookup',
  description: 'Look a key up.',
  args: z.object({ key: z.string() }),
  effect: 'none',
  run: ({ key }) => ({ key, value: `value of ${key}` }),
});

const note = defineTool({
  name: 'note',
  description: 'Write a note down.',
  args: z.object({ text: z.string() }),
  effect: 'idempotent',
  run: ({ text }) => ({ saved: true, length: text.length }),
});

const agent = defineAgent({
  name: 'sustained',
  instructions: 'Look things up and take notes, then answer.',
  model: scriptedModel(({ turn }) =>
    turn >= CYCLES
      ? `Done after ${CYCLES} cycles.`
      : { toolCalls: [turn % 2 === 0 ? { name: 'lookup', args: { key: `item-${turn}` } } : { name: 'note', args: { text: `item ${turn}` } }] },
  ),
  tools: [lookup, note],
  maxSteps: CYCLES + 1,
});

export const benchmark: Benchmark = {
  name: 'sustained',
  title: `Sustained: back-to-back ${CYCLES}-cycle runs for ${SECONDS} s on one runtime (SQLite, the host's shared breakers)`,
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-sustained-'));
    const host = await Host.open({ cwd: dir, flags: { db: join(dir, 'keel.db') }, env: {} });
    try {
      const runtime = host.runtime();
      const started = now();
      const slices: number[][] = [];
      let runs = 0;
      for (;;) {
        const elapsed = micros(now() - started) / 1e6;
        if (elapsed >= SECONDS) break;
        const slice = Math.floor(elapsed / SLICE_S);
        const before = now();
        const run = await (await runtime.start(agent, { input: `run ${runs}` })).done;
        if (run.state !== 'completed') throw new Error(`run ${run.id} ended ${run.state}: ${run.error ?? ''}`);
        (slices[slice] ??= []).push(micros(now() - before) / CYCLES);
        runs += 1;
        if (runs % 500 === 0) progress(`${runs} runs, ${formatNumber(elapsed, 0)} s`);
      }
      const rows = slices.map((costs, index) => [`${index * SLICE_S}-${(index + 1) * SLICE_S} s`, formatNumber(costs.length, 0), formatNumber(median(costs))]);
      for (const line of table(['slice', 'runs', 'µs per cycle (median)'], rows)) print(line);
      const first = median(slices[0] ?? [0]);
      const last = median(slices.at(-1) ?? [0]);
      print(`last ${SLICE_S} s against the first: ${formatRatio(last / first)} (goal: at most 1.20x) over ${runs} runs`);
    } finally {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
