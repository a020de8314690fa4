import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RpcError } from '../../src/protocol/jsonRpc';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { REPO_ROOT } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

/** The owner of a process that no longer exists, as a crashed runtime process or CLI leaves behind. */
const DEAD_OWNER = `${hostname()}/999999/crashed`;

/**
 * One idempotent tool that records each idempotency key it receives, logs, and then takes
 * SLOW_TOOL_MS milliseconds (0 unless that is set), so that its process can be killed mid-call.
 */
function slowAgent(callsFile: string): string {
  return `import { appendFileSync } from 'node:fs';
import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const slowStep = defineTool({
  name: 'slow_step',
  description: 'Takes a while.',
  args: z.object({}),
  effect: 'idempotent',
  run: async (_args, ctx) => {
    appendFileSync(${JSON.stringify(callsFile)}, ctx.idempotencyKey + '\\n');
    ctx.log('slow step started');
    await new Promise((resolve) => setTimeout(resolve, Number(process.env['SLOW_TOOL_MS'] ?? 0)));
    return 'slept';
  },
});

export default defineAgent({
  name: 'slow',
  instructions: 'Take the slow step.',
  model: scriptedModel([{ toolCalls: [{ name: 'slow_step' }] }, 'Finished.']),
  tools: [slowStep],
});
`;
}

describe('the runtime process with interrupted and paused runs', () => {
  const tempDir = useTempDirs();
  const daemons: RuntimeProcess[] = [];

  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()));
  });

  function start(workspace: string, env: Readonly<Record<string, string>> = {}): RuntimeProcess {
    const daemon = new RuntimeProcess(workspace, env);
    daemons.push(daemon);
    return daemon;
  }

  it('after a SIGKILL, the next runtime process names the run as interrupted and resumeRun completes it in the same run', async () => {
    const workspace = tempDir('keel-resume-');
    const callsFile = join(workspace, 'calls.log');
    const agentFile = join(workspace, 'slow.agent.ts');
    writeFileSync(agentFile, slowAgent(callsFile));

    const first = start(workspace, { SLOW_TOOL_MS: '60000' });
    await first.request('initialize', { workspaceRoot: workspace });
    const { runId } = await first.request('startRun', { agentFile, input: 'go' });
    await first.until((event) => event.type === 'tool_log' && event.runId === runId, 'the slow tool starting');
    await first.kill();

    const second = start(workspace);
    const { interrupted } = await second.request('initialize', { workspaceRoot: workspace });
    assert.deepEqual(
      interrupted.map((run) => [run.id, run.state]),
      [[runId, 'interrupted']],
    );
    assert.deepEqual(await second.request('resumeRun', { runId }), { runId });
    const stopped = await second.finished(runId);

    assert.equal(stopped.state, 'completed', stopped.error ?? '');
    assert.equal(stopped.result, 'Finished.');
    assert.equal(stopped.traceId, interrupted[0]?.traceId, 'the same trace');
    assert.deepEqual(readFileSync(callsFile, 'utf8').trim().split('\n'), [`${runId}:1:0`, `${runId}:1:0`], 'called again with the same key');
    const { steps } = await second.request('getRun', { runId });
    assert.deepEqual(
      steps.map((step) => [step.name, step.status, step.attempts]),
      [
        ['keel.scripted:scripted', 'completed', 1],
        ['slow_step', 'completed', 2],
        ['keel.scripted:scripted', 'completed', 1],
      ],
    );
  });

  it('listRuns and getRun read a run whose process died after this one started as interrupted', async () => {
    const workspace = tempDir('keel-resume-');
    const daemon = start(workspace);
    const { interrupted, databasePath } = await daemon.request('initialize', { workspaceRoot: workspace });
    assert.deepEqual(interrupted, []);

    // What a CLI that was killed mid-run leaves behind.
    const store = openSqliteStore(databasePath);
    try {
      await store.createRun({
        id: 'run_killed_cli',
        agent: 'travel',
        agentFile: join(workspace, 'travel.agent.ts'),
        model: 'keel.scripted:travel-script',
        input: 'go',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        owner: DEAD_OWNER,
        createdAt: Date.now(),
      });
    } finally {
      await store.close();
    }

    const [listed] = await daemon.request('listRuns', {});
    assert.ok(listed);
    assert.equal(listed.id, 'run_killed_cli');
    assert.equal(listed.state, 'interrupted');
    assert.equal(listed.error, 'The runtime process running it stopped before it finished.');
    assert.equal((await daemon.request('getRun', { runId: 'run_killed_cli' })).run.state, 'interrupted');
  });

  it('listApprovals answers a waiting run’s pending decision, and resumeRun refuses that run with a sentence', async () => {
    const workspace = tempDir('keel-resume-');
    const daemon = start(workspace);
    const { databasePath } = await daemon.request('initialize', { workspaceRoot: workspace });
    const store = openSqliteStore(databasePath);
    const now = Date.now();
    try {
      await store.createRun({
        id: 'run_waiting',
        agent: 'travel',
        agentFile: join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts'),
        model: 'keel.scripted:travel-script',
        input: 'go',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        owner: DEAD_OWNER,
        createdAt: now,
      });
      await store.requestApproval({
        id: 'appr_run_waiting:3:0',
        runId: 'run_waiting',
        seq: 4,
        kind: 'unknown_outcome',
        agent: 'travel',
        tool: 'book_flight',
        args: { flightId: 'UA66' },
        argsHash: 'hash',
        summary: 'flightId: "UA66"',
        reason: 'book_flight was running when its process stopped.',
        requestedAt: now,
        deadline: null,
        onExpiry: 'reject',
        escalateTo: null,
      });
      await store.finishRun({
        runId: 'run_waiting',
        state: 'waiting_approval',
        result: null,
        error: 'book_flight was running when its process stopped.',
        endedAt: null,
        at: now,
      });
    } finally {
      await store.close();
    }

    const pending = await daemon.request('listApprovals', { runId: 'run_waiting', status: 'pending' });
    assert.deepEqual(
      pending.map((approval) => [approval.id, approval.tool, approval.status]),
      [['appr_run_waiting:3:0', 'book_flight', 'pending']],
    );
    assert.deepEqual(await daemon.request('listApprovals', { status: 'decided' }), []);
    assert.equal((await daemon.request('listApprovals', {})).length, 1);

    const refusal = await daemon.request('resumeRun', { runId: 'run_waiting' }).then(
      () => assert.fail('a run waiting for a decision was resumed'),
      (error: unknown) => error,
    );
    assert.ok(refusal instanceof RpcError);
    assert.equal(
      refusal.message,
      'Run run_waiting is waiting for a decision on approval appr_run_waiting:3:0 (book_flight): book_flight was running when its process stopped.',
    );
    assert.equal((await daemon.request('getRun', { runId: 'run_waiting' })).run.state, 'waiting_approval', 'nothing changed');
  });
});
