import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_UNSUPPORTED_NODE } from '../../src/protocol/daemon';
import { RpcError } from '../../src/protocol/jsonRpc';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { REPO_ROOT, spawnNode, within } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

const DAEMON = join(REPO_ROOT, 'dist', 'daemon.js');
const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
const OLD_NODE = '/usr/bin/node';

/** Its tool prints to stdout, from the module and from the tool, and schedules a late exception. */
const NOISY_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

console.log('loading the noisy agent');

const shout = defineTool({
  name: 'shout',
  description: 'Prints to stdout.',
  args: z.object({ text: z.string() }),
  effect: 'none',
  run: ({ text }) => {
    console.log(text);
    process.stdout.write('a raw write to stdout\\n');
    return 'shouted';
  },
});

export default defineAgent({
  name: 'noisy',
  instructions: 'Shout once.',
  model: scriptedModel([{ toolCalls: [{ name: 'shout', args: { text: 'hello from the tool' } }] }, 'Shouted.']),
  tools: [shout],
});
`;

const LATE_THROW_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const fireAndForget = defineTool({
  name: 'fire_and_forget',
  description: 'Schedules work that fails after the tool has returned.',
  args: z.object({}),
  effect: 'none',
  run: () => {
    setTimeout(() => {
      throw new Error('late');
    });
    return 'scheduled';
  },
});

export default defineAgent({
  name: 'late',
  instructions: 'Fire and forget.',
  model: scriptedModel([{ toolCalls: [{ name: 'fire_and_forget' }] }, 'Done.']),
  tools: [fireAndForget],
});
`;

const WAITING_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const waitForCancel = defineTool({
  name: 'wait_for_cancel',
  description: 'Waits until the run is cancelled.',
  args: z.object({}),
  effect: 'none',
  run: (_args, ctx) =>
    new Promise<string>((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    }),
});

export default defineAgent({
  name: 'waiter',
  instructions: 'Wait.',
  model: scriptedModel([{ toolCalls: [{ name: 'wait_for_cancel' }] }, 'Never reached.']),
  tools: [waitForCancel],
});
`;

/** A syntax error on line 6 (the doubled comma). */
const BROKEN_AGENT = `import { defineAgent } from 'keel-agents';

export default defineAgent({
  name: 'broken',
  instructions: 'Never loads.',
  model: 'openai:gpt-4o-mini',,
});
`;

async function rpcRejection(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    return error;
  }
  assert.fail('the request succeeded');
}

describe('the runtime process (node dist/daemon.js, JSON-RPC over stdio)', () => {
  const tempDir = useTempDirs();
  const daemons: RuntimeProcess[] = [];

  before(() => {
    assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests');
  });

  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()));
  });

  function start(env: Readonly<Record<string, string>> = {}): RuntimeProcess {
    const daemon = new RuntimeProcess(tempDir('keel-daemon-'), env);
    daemons.push(daemon);
    return daemon;
  }

  function writeAgent(daemon: RuntimeProcess, name: string, source: string): string {
    const file = join(daemon.workspace, name);
    writeFileSync(file, source);
    return file;
  }

  it('initialize answers with its version, its Node and the database it opened in the workspace', async () => {
    const daemon = start();
    const result = await daemon.request('initialize', { workspaceRoot: daemon.workspace });

    const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(result.version, packageJson.version);
    assert.equal(result.nodeVersion, process.version);
    assert.equal(result.databasePath, join(daemon.workspace, '.keel', 'keel.db'));
    assert.equal(result.runtimePath, DAEMON);
    assert.ok(existsSync(result.databasePath), 'the database file exists');
  });

  it('initialize uses the database path it is given', async () => {
    const daemon = start();
    // A database the person names goes in a folder that exists: Keel makes no folders for it.
    mkdirSync(join(daemon.workspace, 'elsewhere'));
    const databasePath = join(daemon.workspace, 'elsewhere', 'runs.db');
    const result = await daemon.request('initialize', { workspaceRoot: daemon.workspace, settings: { 'keel.databasePath': databasePath } });

    assert.equal(result.databasePath, databasePath);
    assert.ok(existsSync(databasePath));
    assert.ok(!existsSync(join(daemon.workspace, '.keel')), 'no database is made in the default place');
  });

  it('runs every tool in the sandbox when started with KEEL_SANDBOX=all (keel.sandbox.default), so a tool reaching for process fails saying so', async () => {
    const daemon = start({ KEEL_SANDBOX: 'all' });
    await daemon.initialize();
    const { runId } = await daemon.request('startRun', { agentFile: writeAgent(daemon, 'noisy.agent.ts', NOISY_AGENT), input: 'Shout.' });
    const finished = await daemon.finished(runId);
    const tool = (await daemon.request('getRun', { runId })).steps.find((step) => step.kind === 'tool');
    assert.equal(finished.state, 'completed');
    assert.match(tool?.error ?? '', /shout failed: it used `process`, which does not exist in the sandbox: sandboxed tools get no Node APIs/);
  });

  it('refuses requests before initialize with a sentence, and keeps serving', async () => {
    const daemon = start();

    const error = await rpcRejection(daemon.request('listRuns', {}));
    assert.equal(error.message, 'The runtime process was not initialized.');
    assert.equal(error.data.name, 'KeelError');
    await daemon.initialize();
    assert.deepEqual(await daemon.request('listRuns', {}), []);
  });

  it('startRun streams the run as runEvent notifications in order, and getRun and listRuns return it completed', async () => {
    const daemon = start();
    await daemon.initialize();

    const { runId } = await daemon.request('startRun', { agentFile: TRAVEL, input: 'Fly NYC to LIS on 2026-12-10' });
    const finished = await daemon.finished(runId);

    const events = daemon.eventsOf(runId);
    assert.equal(events.length, daemon.events.length, 'every event belongs to the run');
    const lifecycle = events.filter((event) => event.type !== 'model_delta' && event.type !== 'tool_log');
    assert.deepEqual(
      lifecycle.map((event) => (event.type === 'step_started' || event.type === 'step_finished' ? `${event.type} ${event.step.seq}` : event.type)),
      [
        'run_started',
        'step_started 1',
        'step_finished 1',
        'step_started 2',
        'step_finished 2',
        'step_started 3',
        'step_finished 3',
        'step_started 4',
        'step_finished 4',
        'step_started 5',
        'step_finished 5',
        'run_finished',
      ],
    );
    const toolLog = events.findIndex((event) => event.type === 'tool_log');
    assert.deepEqual(
      events.slice(toolLog - 1, toolLog + 2).map((event) => event.type),
      ['step_started', 'tool_log', 'step_finished'],
      'the booking tool logs while its step is open',
    );
    assert.equal(finished.state, 'completed');
    assert.match(finished.result ?? '', /^Booked UA66 for \$598/);

    const { run, steps } = await daemon.request('getRun', { runId });
    assert.deepEqual(run, finished);
    assert.equal(run.stepCount, 5);
    assert.equal(run.agentFile, TRAVEL);
    assert.deepEqual(
      steps.map((step) => `${step.kind} ${step.name} ${step.status}`),
      [
        'model keel.scripted:travel-script completed',
        'tool search_flights completed',
        'model keel.scripted:travel-script completed',
        'tool book_flight completed',
        'model keel.scripted:travel-script completed',
      ],
    );
    const finishedSteps = events.flatMap((event) => (event.type === 'step_finished' ? [event.step] : []));
    assert.deepEqual(finishedSteps, steps, 'the streamed steps are the recorded ones');

    const runs = await daemon.request('listRuns', {});
    assert.deepEqual(runs, [run]);
  });

  it('getRun of an unknown run fails with a sentence', async () => {
    const daemon = start();
    await daemon.initialize();

    const error = await rpcRejection(daemon.request('getRun', { runId: 'run_nothere' }));
    assert.match(error.message, /^No run run_nothere in .*keel\.db\.$/);
  });

  it('startRun on a missing agent file fails with an AgentLoadError naming the file', async () => {
    const daemon = start();
    await daemon.initialize();
    const missing = join(daemon.workspace, 'missing.agent.ts');

    const error = await rpcRejection(daemon.request('startRun', { agentFile: missing, input: 'hi' }));
    assert.equal(error.data.name, 'AgentLoadError');
    assert.equal(error.data.context?.['file'], missing);
    assert.equal(error.message, 'The agent file was not found: missing.agent.ts');
    assert.deepEqual(await daemon.request('listRuns', {}), [], 'no run is recorded');
  });

  it('startRun on an agent file with a syntax error fails with an AgentLoadError giving file, line and column', async () => {
    const daemon = start();
    await daemon.initialize();
    const broken = writeAgent(daemon, 'broken.agent.ts', BROKEN_AGENT);

    const error = await rpcRejection(daemon.request('startRun', { agentFile: broken, input: 'hi' }));
    assert.equal(error.data.name, 'AgentLoadError');
    assert.deepEqual(error.data.context, { file: broken, line: 6, column: 31 });
    assert.equal(error.message, 'broken.agent.ts:6:31: Expected identifier but found ","');
    assert.ok(daemon.running);
  });

  it("keeps stdout for the protocol: an agent's console.log goes to stderr", async () => {
    const daemon = start();
    await daemon.initialize();
    const agentFile = writeAgent(daemon, 'noisy.agent.ts', NOISY_AGENT);

    const { runId } = await daemon.request('startRun', { agentFile, input: 'shout' });
    const finished = await daemon.finished(runId);
    assert.equal(finished.state, 'completed');
    assert.equal((await daemon.request('listRuns', {})).length, 1);

    const lines = daemon.proc.stdout().split('\n').filter((line) => line !== '');
    assert.ok(lines.length > 0);
    for (const line of lines) {
      const message = JSON.parse(line) as { jsonrpc?: unknown };
      assert.equal(message.jsonrpc, '2.0', `not a JSON-RPC message: ${line}`);
    }
    const stderr = daemon.proc.stderr();
    for (const text of ['loading the noisy agent', 'hello from the tool', 'a raw write to stdout']) {
      assert.ok(stderr.includes(text), `stderr should show ${JSON.stringify(text)}; stderr:\n${stderr}`);
    }
  });

  it('survives an exception thrown later by a timer an agent scheduled, and keeps answering', async () => {
    const daemon = start();
    await daemon.initialize();
    const agentFile = writeAgent(daemon, 'late.agent.ts', LATE_THROW_AGENT);

    const { runId } = await daemon.request('startRun', { agentFile, input: 'go' });
    assert.equal((await daemon.finished(runId)).state, 'completed');
    await daemon.proc.stderrIncludes('Error: late');

    const runs = await daemon.request('listRuns', {});
    assert.deepEqual(
      runs.map((run) => [run.id, run.state]),
      [[runId, 'completed']],
    );
    assert.ok(daemon.running, 'the runtime process is still running');
  });

  it('cancelRun ends a run whose tool waits on its signal as cancelled', async () => {
    const daemon = start();
    await daemon.initialize();
    const agentFile = writeAgent(daemon, 'waiter.agent.ts', WAITING_AGENT);

    const { runId } = await daemon.request('startRun', { agentFile, input: 'wait' });
    await daemon.until(
      (event) => event.type === 'step_started' && event.step.runId === runId && event.step.name === 'wait_for_cancel',
      'the waiting tool starting',
    );
    assert.deepEqual(await daemon.request('cancelRun', { runId }), { cancelled: true });
    const finished = await daemon.finished(runId);

    assert.equal(finished.state, 'cancelled');
    assert.equal(finished.error, 'Cancelled by the user.');
    const { run, steps } = await daemon.request('getRun', { runId });
    assert.equal(run.state, 'cancelled');
    assert.deepEqual(
      steps.map((step) => [step.name, step.status, step.error]),
      [
        ['keel.scripted:scripted', 'completed', null],
        ['wait_for_cancel', 'failed', 'Cancelled by the user.'],
      ],
    );
    assert.deepEqual(await daemon.request('cancelRun', { runId }), { cancelled: false }, 'a finished run cannot be cancelled');
  });

  it('cancelRun of a run it does not know answers cancelled: false', async () => {
    const daemon = start();
    await daemon.initialize();

    assert.deepEqual(await daemon.request('cancelRun', { runId: 'run_unknown' }), { cancelled: false });
  });

  it('shutdown cancels the runs in progress, records them, answers and exits 0', async () => {
    const daemon = start();
    await daemon.initialize();
    const agentFile = writeAgent(daemon, 'waiter.agent.ts', WAITING_AGENT);
    const { runId } = await daemon.request('startRun', { agentFile, input: 'wait' });
    await daemon.until((event) => event.type === 'step_started' && event.step.name === 'wait_for_cancel', 'the waiting tool starting');

    assert.equal(await daemon.request('shutdown', {}), null);
    assert.deepEqual(await within(daemon.proc.exited, 'the runtime process exiting'), { code: 0, signal: null });

    const store = openSqliteStore(join(daemon.workspace, '.keel', 'keel.db'));
    try {
      assert.equal((await store.getRun(runId))?.state, 'cancelled');
    } finally {
      await store.close();
    }
  });

  it('exits 0 when its stdin closes', async () => {
    const daemon = start();
    await daemon.initialize();

    daemon.proc.child.stdin.end();

    assert.deepEqual(await within(daemon.proc.exited, 'the runtime process exiting'), { code: 0, signal: null });
  });

  it(`on a Node older than 22 prints one sentence and exits ${EXIT_UNSUPPORTED_NODE}`, async function () {
    const major = existsSync(OLD_NODE) ? Number(execFileSync(OLD_NODE, ['-p', 'process.versions.node.split(".")[0]']).toString()) : undefined;
    if (major === undefined || major >= 22) {
      const reason = major === undefined ? `${OLD_NODE} does not exist` : `${OLD_NODE} is Node ${major}, not older than 22`;
      if (this.test) this.test.title += ` (skipped: ${reason})`;
      this.skip();
    }
    const cwd = tempDir('keel-old-node-');
    const proc = spawnNode(DAEMON, [], { node: OLD_NODE, cwd });
    proc.child.stdin.end();

    const exit = await within(proc.exited, 'the runtime process exiting');

    assert.equal(exit.code, EXIT_UNSUPPORTED_NODE, proc.stderr());
    assert.equal(proc.stdout(), '');
    const lines = proc.stderr().trimEnd().split('\n');
    assert.equal(lines.length, 1, proc.stderr());
    assert.match(lines[0] ?? '', new RegExp(`^Keel's runtime needs Node\\.js 22 or newer, but ${OLD_NODE} is v${major}\\.`));
    assert.ok(!existsSync(join(cwd, '.keel')), 'nothing is written');
  });
});
