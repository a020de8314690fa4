/**
 * Replay throughput and step-back latency of the replay debugger on a recorded run of 10,000
 * steps: the run is recorded once (scripted model, one tool call per turn), read back, then
 * replayed with its agent re-executing it (every model response and tool result served from the
 * recording, the journal's checks on) and from the recording alone; then the engine continues
 * through the replay, and steps back from the end, one step at a time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool } from '../src/runtime/agent/define';
import { Runtime } from '../src/runtime/agent/runtime';
import { scriptedModel } from '../src/runtime/model/scripted';
import { loadRecording } from '../src/runtime/replay/recording';
import { agentsOf, replayRecording } from '../src/runtime/replay/replay';
import { ReplayEngine, type FunctionBreakpoint } from '../src/runtime/replay/replayEngine';
import { openSqliteStore } from '../src/runtime/store/sqliteStore';
import { type Benchmark, formatNumber, median, micros, now, table } from './harness';

const CYCLES = 5_000;
const REPLAYS = 5;
const STEP_BACKS = 2_000;

function longAgent() {
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks a number up.',
    args: z.object({ n: z.number() }),
    effect: 'none',
    run: ({ n }) => ({ n, value: `value ${n}` }),
  });
  return defineAgent({
    name: 'long',
    instructions: 'Look numbers up, one per turn, then say you are done.',
    model: scriptedModel(({ turn }) => (turn < CYCLES ? { text: `Looking up ${turn}.`, toolCalls: [{ name: 'lookup', args: { n: turn } }] } : 'Done.')),
    tools: [lookup],
    maxSteps: CYCLES + 1,
    loopLimits: { sameCall: 2, turnsWithoutProgress: 2 },
  });
}

export const benchmark: Benchmark = {
  name: 'replay',
  title: `Replay debugger on a recorded run of ${2 * CYCLES} steps`,
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-replay-'));
    const store = openSqliteStore(join(dir, 'keel.db'));
    try {
      const agent = longAgent();
      progress(`recording a run of ${2 * CYCLES + 1} steps`);
      const run = await (await new Runtime({ store }).start(agent, { input: 'go' })).done;
      if (run.state !== 'completed') throw new Error(`the recorded run ended ${run.state}: ${run.error ?? ''}`);
      const loadStarted = now();
      const recording = await loadRecording(store, run.id);
      const loadMs = micros(now() - loadStarted) / 1000;
      const steps = recording.steps.length;

      // Steps per second of wall time, and per second of this process's CPU time (its threads'
      // together, the garbage collector's included), which other work on a busy machine inflates less.
      const rates = { checked: [] as number[], checkedCpu: [] as number[], alone: [] as number[], aloneCpu: [] as number[] };
      const agents = agentsOf(agent);
      // The first replay in this process (cold: its code not yet optimized), as opening a replay in
      // the debugger is; the first of this benchmark's process when it runs alone.
      const coldStarted = now();
      let timeline = await replayRecording(recording, { agents });
      const cold = steps / (micros(now() - coldStarted) / 1e6);
      for (let i = 0; i < REPLAYS; i++) {
        progress(`replay ${i + 1}/${REPLAYS}`);
        let started = now();
        let cpu = process.cpuUsage();
        timeline = await replayRecording(recording, { agents });
        rates.checked.push(steps / (micros(now() - started) / 1e6));
        rates.checkedCpu.push(steps / cpuSeconds(cpu));
        if (timeline.positions.length !== steps || timeline.root?.unchecked !== null) throw new Error(`the replay stopped: ${timeline.root?.outcome ?? ''}`);
        started = now();
        cpu = process.cpuUsage();
        const alone = await replayRecording(recording, { unchecked: 'benchmark' });
        rates.alone.push(steps / (micros(now() - started) / 1e6));
        rates.aloneCpu.push(steps / cpuSeconds(cpu));
        if (alone.positions.length !== steps) throw new Error('the replay from the recording lost steps');
      }

      progress(`stepping back ${STEP_BACKS} times from the end`);
      const engine = new ReplayEngine(timeline);
      await engine.goTo(steps - 1);
      // The first look at a step's flags runs the failure detectors over the whole run, once.
      let started = now();
      engine.view(engine.position!, true);
      const firstViewMs = micros(now() - started) / 1000;
      const back: number[] = [];
      const backAndRead: number[] = [];
      for (let i = 0; i < STEP_BACKS; i++) {
        if (engine.current === 0) await engine.goTo(steps - 1);
        started = now();
        await engine.stepBack();
        back.push(micros(now() - started));
        started = now();
        await engine.stepBack();
        engine.view(engine.position!, true);
        backAndRead.push(micros(now() - started));
      }
      started = now();
      await engine.goTo(steps - 1);
      await engine.reverseContinue();
      const reverseAll = micros(now() - started) / 1000;
      // Continue from the first step to the last: a function breakpoint on a tool the run never
      // calls checked at every step, then one whose condition is tested at every tool step.
      const continueRates = async (breakpoint: FunctionBreakpoint, times: number): Promise<number[]> => {
        engine.setFunctionBreakpoints([breakpoint]);
        const rates: number[] = [];
        for (let i = 0; i < times; i++) {
          await engine.goTo(0);
          started = now();
          const stop = await engine.continue();
          if (stop.index !== steps - 1) throw new Error(`the continue stopped at ${stop.index}: ${stop.description}`);
          rates.push((steps - 1) / (micros(now() - started) / 1e6));
        }
        return rates;
      };
      const unconditional = await continueRates({ id: 1, name: 'never_called' }, REPLAYS);
      progress('continuing with a breakpoint condition');
      const conditional = await continueRates({ id: 2, name: 'lookup', condition: 'args.n < 0' }, 1);

      print(`run of ${steps} journal steps (${CYCLES} model+tool turns and the answer), read from SQLite in ${formatNumber(loadMs, 1)} ms`);
      for (const line of table(
        ['replay', 'median steps/s', 'min', 'max', 'steps per CPU-second (median)'],
        [
          ['agent re-executed, journal checks on, first replay (cold)', formatNumber(cold), '', '', ''],
          ['agent re-executed, journal checks on (goal: 300,000)', ...rate(rates.checked), formatNumber(median(rates.checkedCpu))],
          ['from the recording alone', ...rate(rates.alone), formatNumber(median(rates.aloneCpu))],
          ['continue through the replay, a breakpoint checked at every step', ...rate(unconditional), ''],
          ['the same, a breakpoint condition tested at every tool step', ...rate(conditional), ''],
        ],
      )) {
        print(line);
      }
      print('');
      for (const line of table(
        ['step back (µs)', 'p50', 'p99', 'max'],
        [
          ['one step', ...latency(back)],
          ['one step, then the step\'s variables with all messages', ...latency(backAndRead)],
        ],
      )) {
        print(line);
      }
      print(`reverse continue over all ${steps} steps (no breakpoint): ${formatNumber(reverseAll, 1)} ms`);
      print(`first read of a step's variables (the failure detectors run over the whole run, once): ${formatNumber(firstViewMs, 1)} ms`);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function rate(values: readonly number[]): string[] {
  return [formatNumber(median(values)), formatNumber(Math.min(...values)), formatNumber(Math.max(...values))];
}

function latency(values: readonly number[]): string[] {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (share: number) => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
  return [formatNumber(at(0.5), 1), formatNumber(at(0.99), 1), formatNumber(sorted.at(-1) ?? 0, 1)];
}
