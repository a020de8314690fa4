/**
 * The debug adapter's start, as the editor makes it: `node --no-node-snapshot dist/debugAdapter.js`
 * in a new process, timed from its start to its answer to `initialize`. Next to it, in turn, a bare
 * `node` start with the same flag, to its exit (the reference).
 */
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { type Benchmark, formatNumber, median, micros, now, stats, table } from './harness';

const STARTS = 9;
const ADAPTER = resolve(__dirname, '..', '..', 'dist', 'debugAdapter.js');
const NODE_FLAGS = ['--no-node-snapshot'];

/** Starts the adapter, sends `initialize`; resolves with the ms to its response. */
function initializeMs(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = now();
    const child = spawn(process.execPath, [...NODE_FLAGS, ADAPTER], { stdio: ['pipe', 'pipe', 'ignore'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!output.includes('"command":"initialize"')) return;
      resolvePromise(micros(now() - started) / 1000);
      child.kill();
    });
    child.on('exit', () => reject(new Error(`the debug adapter exited before answering initialize:\n${output}`)));
    const body = JSON.stringify({ seq: 1, type: 'request', command: 'initialize', arguments: { adapterID: 'keel', linesStartAt1: true, columnsStartAt1: true } });
    child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

function bareMs(): number {
  const started = now();
  spawnSync(process.execPath, [...NODE_FLAGS, '-e', '0'], { stdio: 'ignore' });
  return micros(now() - started) / 1000;
}

export const benchmark: Benchmark = {
  name: 'debugAdapterStart',
  title: 'Debug adapter: a new process to its answer to initialize',
  async run(print, progress) {
    const bare: number[] = [];
    const adapter: number[] = [];
    // One of each first, not counted: it fills V8's compile cache, as the first session would.
    for (let i = -1; i < STARTS; i++) {
      progress(`start ${i + 2}/${STARTS + 1}`);
      const reference = bareMs();
      const answered = await initializeMs();
      if (i < 0) continue;
      bare.push(reference);
      adapter.push(answered);
    }
    for (const line of table(
      ['measure', 'median ms', 'min ms', 'max ms'],
      [
        [`bare start: node ${NODE_FLAGS.join(' ')} -e 0, to exit (the reference)`, ...stats(bare)],
        ['debug adapter: start -> initialize answered (goal: under 150 ms)', ...stats(adapter)],
      ],
    )) {
      print(line);
    }
    print(`over a bare start, medians: +${formatNumber(median(adapter) - median(bare), 0)} ms`);
  },
};
