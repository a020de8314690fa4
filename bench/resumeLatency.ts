/**
 * Resume latency: a run with 1,000 completed steps is interrupted (its process SIGKILLed while a
 * tool hangs); `keel resume` then replays the journal and goes on. Measures, over several
 * resumes, the time from process start to the first resumed step (the tool that was in flight
 * starting again), and inside one process the replay alone. Next to it, in turn with each resume:
 * a bare `node` start with the same flags (the reference), and `keel --version` and `keel runs`
 * from start to exit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadAgentFile } from '../src/runtime/agent/loader';
import { Runtime } from '../src/runtime/agent/runtime';
import { openSqliteStore } from '../src/runtime/store/sqliteStore';
import { type Benchmark, formatNumber, median, micros, now, stats, table } from './harness';

const CYCLES = 500;
const RESUMES = 7;
const CLI = resolve(__dirname, '..', '..', 'bin', 'keel.js');
/** bin/keel.js's own flags (its first line), which a bare start is given too. */
const NODE_FLAGS = ['--no-node-snapshot'];

const AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks something up.',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: ({ n }) => 'value ' + n,
});

const finish = defineTool({
  name: 'finish',
  description: 'The last step; hangs while KEEL_BENCH_HANG is set, as if its process died there.',
  args: z.object({}),
  effect: 'idempotent',
  run: (_args, ctx) => {
    ctx.log('finish started');
    return process.env.KEEL_BENCH_HANG === '1' ? new Promise(() => undefined) : 'finished';
  },
});

export default defineAgent({
  name: 'long',
  instructions: 'Look things up, then finish.',
  model: scriptedModel(({ turn }) =>
    turn < ${CYCLES}
      ? { toolCalls: [{ name: 'lookup', args: { n: turn } }] }
      : turn === ${CYCLES}
        ? { toolCalls: [{ name: 'finish', args: {} }] }
        : 'Done.',
  ),
  tools: [lookup, finish],
  maxSteps: ${CYCLES + 2},
});
`;

/** Runs node with `args` to its exit; the ms it took. */
function exitMs(args: readonly string[], cwd: string): number {
  const started = now();
  const result = spawnSync(process.execPath, [...NODE_FLAGS, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${String(result.status)}:\n${result.stderr.toString('utf8')}`);
  return micros(now() - started) / 1000;
}

/** Runs the CLI until its output shows `marker`, then SIGKILLs it; resolves with the ms it took. */
function runUntil(args: readonly string[], env: NodeJS.ProcessEnv, marker: string, cwd: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = now();
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let seen = false;
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!seen && output.includes(marker)) {
        seen = true;
        const elapsed = micros(now() - started) / 1000;
        child.kill('SIGKILL');
        resolvePromise(elapsed);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      if (!seen) reject(new Error(`keel ${args.join(' ')} ended before printing "${marker}":\n${output.slice(-2000)}`));
    });
  });
}

export const benchmark: Benchmark = {
  name: 'resumeLatency',
  title: `Resume latency of a run with ${2 * CYCLES} completed steps`,
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-resume-'));
    try {
      const agentFile = join(dir, 'long.agent.ts');
      writeFileSync(agentFile, AGENT);
      const db = join(dir, 'keel.db');
      progress(`recording a run of ${2 * CYCLES} steps and killing it in its last tool`);
      await runUntil(['run', agentFile, '--input', 'go', '--db', db], { KEEL_BENCH_HANG: '1' }, 'finish started', dir);
      const store = openSqliteStore(db);
      const [run] = await store.listRuns({ limit: 1 });
      const steps = run ? (await store.getSteps(run.id)).length : 0;
      await store.close();
      if (!run) throw new Error('the run was not recorded');

      const processMs: number[] = [];
      const bareMs: number[] = [];
      const versionMs: number[] = [];
      const runsMs: number[] = [];
      // One of each first, not counted: it fills V8's compile cache, as any earlier keel command would.
      for (let i = -1; i < RESUMES; i++) {
        progress(`resume ${i + 2}/${RESUMES + 1} in a new process, between bare starts`);
        const copy = join(dir, `resume-${i + 1}.db`);
        copyFileSync(db, copy);
        const bare = exitMs(['-e', '0'], dir);
        const resumed = await runUntil(['resume', run.id, '--db', copy], { KEEL_BENCH_HANG: '1' }, 'finish started', dir);
        const version = exitMs([CLI, '--version'], dir);
        const listed = exitMs([CLI, 'runs', '--db', copy], dir);
        if (i < 0) continue;
        bareMs.push(bare);
        processMs.push(resumed);
        versionMs.push(version);
        runsMs.push(listed);
      }

      progress('replaying in this process');
      const { agent } = await loadAgentFile(agentFile);
      const replayMs: number[] = [];
      for (let i = 0; i < RESUMES; i++) {
        const copy = join(dir, `replay-${i}.db`);
        copyFileSync(db, copy);
        const replayStore = openSqliteStore(copy);
        await replayStore.markInterrupted(() => false, Date.now());
        process.env['KEEL_BENCH_HANG'] = '1';
        const started = now();
        const firstStep = new Promise<number>((resolvePromise) => {
          void new Runtime({ store: replayStore }).resume(agent, run.id, {
            onEvent: (event) => {
              if (event.type === 'tool_log') resolvePromise(micros(now() - started) / 1000);
            },
          });
        });
        replayMs.push(await firstStep);
        delete process.env['KEEL_BENCH_HANG'];
        await replayStore.close();
      }

      print(`run of ${steps} journal steps (${CYCLES} model+tool cycles, then the interrupted tool); ${RESUMES} resumes each`);
      for (const line of table(
        ['measure', 'median ms', 'min ms', 'max ms'],
        [
          [`bare start: node ${NODE_FLAGS.join(' ')} -e 0, to exit (the reference)`, ...stats(bareMs)],
          ['new process: `keel resume` start -> first resumed step', ...stats(processMs)],
          ['new process: `keel --version`, to exit', ...stats(versionMs)],
          ['new process: `keel runs`, to exit', ...stats(runsMs)],
          ['in process: runtime.resume() -> first resumed step', ...stats(replayMs)],
        ],
      )) {
        print(line);
      }
      print(
        `over a bare start, medians: keel resume +${formatNumber(median(processMs) - median(bareMs), 0)} ms (goal: at most +60 ms), ` +
          `keel --version +${formatNumber(median(versionMs) - median(bareMs), 0)} ms, keel runs +${formatNumber(median(runsMs) - median(bareMs), 0)} ms`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
