import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRecord, RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { openStore } from '../../src/runtime/store/openStore';
import { startBookingApi, type BookingApi } from '../support/bookingApi';
import { KEEL, describeOutcome, showRun, type RunSnapshot } from '../support/keelCli';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

/**
 * A sub-agent that stops for a decision stops its parent: the parent waits with the sub-agent's
 * decision visible on it, reads nothing as a failure, goes on by one rule once it is decided (from
 * the CLI or the editor's runtime process) and never completes while a sub-agent run under it is
 * unfinished. Through `keel` processes and the runtime process, as people use them.
 */

const TRIP = join(REPO_ROOT, 'test', 'fault', 'fixtures', 'trip.agent.ts');

describe('sub-agents that stop for a decision', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();
  let api: BookingApi;

  before(async () => {
    api = await startBookingApi();
  });

  after(async () => {
    await api.close();
  });

  function keelIn(dir: string): (...args: string[]) => Promise<Finished> {
    const env = testEnv({ BOOKING_API_URL: api.url });
    return (...args) => runNode(KEEL, [...args, '--db', join(dir, 'keel.db')], { cwd: dir, env, timeoutMs: 60_000 });
  }

  const toolStep = (snapshot: { steps: readonly StepRecord[] }, name: string) => snapshot.steps.find((step) => step.name === name);

  it('pauses its parent, which shows the decision and reads no failure; keel approve continues the tree and charges once', async () => {
    const dir = tempDir('keel-sub-pause-');
    const keel = keelIn(dir);
    const started = await keel('run', TRIP, '--input', 'p1:RAIL-9:HOTEL-A:CAR-A', '--json');
    assert.equal(started.code, 3, describeOutcome(started));
    const paused = JSON.parse(started.stdout) as { run: RunRecord; steps: StepRecord[]; approvals: ApprovalRecord[] };
    assert.equal(paused.run.state, 'waiting_approval');
    assert.match(paused.run.error ?? '', /^The hotel sub-agent \(run run_\w+\) is waiting for a decision: over \$300$/);
    const [approval] = paused.approvals;
    assert.ok(approval && paused.approvals.length === 1, 'the sub-agent’s one decision is listed with its parent');
    assert.equal(approval.agent, 'hotel');
    assert.notEqual(approval.runId, paused.run.id);

    // The parent's hotel call is in progress, its attempt paused: not failed, and the model read nothing of it.
    const hotelCall = toolStep(paused, 'hotel');
    assert.equal(hotelCall?.status, 'in_progress');
    assert.deepEqual(hotelCall.failedAttempts.map((failure) => failure.reason), ['paused']);
    assert.equal(toolStep(paused, 'car'), undefined, 'the second sub-agent of the turn waits for the first');

    const listed = await keel('approvals');
    assert.match(listed.stdout, new RegExp(`sub-agent run ${approval.runId}, under run ${paused.run.id} \\(trip\\), which waits for this decision`));

    const approved = await keel('approve', approval.id, '--json');
    assert.equal(approved.code, 0, describeOutcome(approved));
    const done = await showRun(paused.run.id, join(dir, 'keel.db'), { cwd: dir });
    assert.equal(done.run.state, 'completed');
    assert.match(done.run.result ?? '', /^Trip p1: transport BK-\d+; hotel: BK-\d+; car: BK-\d+\.$/);
    const hotelRun = (await showRun(approval.runId, join(dir, 'keel.db'), { cwd: dir })).run;
    assert.equal(hotelRun.state, 'completed');
    assert.equal((await api.ledger(hotelRun.id)).bookings.length, 1, 'the hotel was charged once');
    assert.deepEqual(
      toolStep(done, 'hotel')?.failedAttempts.map((failure) => [failure.reason, typeof failure.delayMs]),
      [['paused', 'number']],
      'the pause is recorded with how long it lasted, and nothing else failed',
    );
  });

  it('continues the tree from the editor’s runtime process by the same rule, and from keel resume of a sub-agent run', async () => {
    const dir = tempDir('keel-sub-editor-');
    const keel = keelIn(dir);
    const daemon = new RuntimeProcess(dir, { BOOKING_API_URL: api.url });
    try {
      await daemon.request('initialize', { workspaceRoot: dir, settings: { 'keel.databasePath': join(dir, 'keel.db') } });
      const { runId } = await daemon.request('startRun', { agentFile: TRIP, input: 'p2:RAIL-9:HOTEL-A:CAR-B' });
      await daemon.stopped(runId, 'waiting_approval');
      const [hotel] = await daemon.request('listApprovals', { status: 'pending' });
      assert.equal(hotel?.agent, 'hotel');
      assert.deepEqual(hotel.under, [{ runId, agent: 'trip' }], 'the approval of a sub-agent names the run it stands under, for the editor to show it there');
      const first = await daemon.request('decide', { approvalId: hotel.id, request: { action: 'reject', reason: 'too dear' } });
      assert.equal(first.resumed, true, 'the root went on after the decision on its sub-agent');
      // The car sub-agent now asks too; the root waits again.
      await daemon.until((event) => event.type === 'run_finished' && event.run.id === runId && daemon.eventsOf(runId).filter((e) => e.type === 'run_finished').length === 2, 'the root waiting again');
      const [car] = await daemon.request('listApprovals', { status: 'pending' });
      assert.equal(car?.agent, 'car');
    } finally {
      await daemon.kill();
    }
    const car = (JSON.parse((await keel('approvals', '--json')).stdout) as ApprovalRecord[])[0];
    assert.ok(car);
    const approved = await keel('approve', car.id, '--no-resume');
    assert.equal(approved.code, 0, describeOutcome(approved));
    const resumed = await keel('resume', car.runId);
    assert.equal(resumed.code, 0, describeOutcome(resumed));
    assert.match(resumed.stdout, new RegExp(`Run ${car.runId} is a sub-agent run under run_\\w+: continuing that run, which continues it\\.`));
    assert.match(resumed.stdout, /Trip p2: transport BK-\d+; hotel: not booked \(\S+ rejected this call: too dear\); car: BK-\d+\./);
    const snapshot: RunSnapshot = await showRun(car.runId, join(dir, 'keel.db'), { cwd: dir });
    assert.equal(snapshot.run.state, 'completed');
  });

  it('passes a pause through retries, circuit breakers and a tool that catches it', async () => {
    const dir = tempDir('keel-sub-wrap-');
    const file = join(dir, 'lead.agent.ts');
    writeFileSync(
      file,
      `import { agentTool, approvals, defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const sign = defineTool({
  name: 'sign', description: 'Signs.', args: z.object({ what: z.string() }), effect: 'unsafe',
  approval: approvals.always('signing needs a person'),
  run: ({ what }) => 'signed ' + what,
});
const signer = defineAgent({
  name: 'signer', instructions: 'Sign.', tools: [sign],
  model: scriptedModel(({ turn, input, toolResults }) => turn === 0 ? { toolCalls: [{ name: 'sign', args: { what: input } }] } : toolResults[0]?.content ?? 'nothing'),
});
// A tool that retries and catches whatever its sub-agent throws: a pause must still pause.
const ask = defineTool({
  name: 'ask', description: 'Asks the signer.', args: z.object({ what: z.string() }), effect: 'idempotent',
  retry: { attempts: 3, baseMs: 1, capMs: 1 },
  run: async ({ what }, ctx) => {
    try {
      return await ctx.subAgent(signer, what);
    } catch (error) {
      return 'the signer failed: ' + String(error);
    }
  },
});
export default defineAgent({
  name: 'lead', instructions: 'Ask twelve times.', tools: [ask, agentTool(signer)], maxSteps: 3,
  model: scriptedModel(({ turn, toolResults }) => turn === 0
    ? { toolCalls: Array.from({ length: 12 }, (_, i) => ({ name: 'ask', args: { what: 'page ' + i } })) }
    : toolResults.map((m) => m.content).join(' | ')),
});
`,
    );
    const keel = keelIn(dir);
    let outcome = await keel('run', file, '--input', 'sign', '--json');
    for (let round = 0; outcome.code === 3; round++) {
      assert.ok(round < 12, 'one decision per page');
      const { approvals } = JSON.parse(outcome.stdout) as { approvals: ApprovalRecord[] };
      assert.equal(approvals.length, 1);
      outcome = await keel('approve', approvals[0]!.id, '--json');
    }
    assert.equal(outcome.code, 0, describeOutcome(outcome));
    const { run, steps } = JSON.parse(outcome.stdout) as { run: RunRecord; steps: StepRecord[] };
    assert.equal(run.result, Array.from({ length: 12 }, (_, i) => `signed page ${i}`).join(' | '), 'no call read a failure, and no circuit opened');
    for (const step of steps.filter((candidate) => candidate.name === 'ask')) {
      assert.deepEqual(step.failedAttempts.map((failure) => failure.reason), ['paused'], `step ${step.seq} paused once and was not retried`);
    }
  });

  it('never completes a run while a sub-agent run under it is unfinished: a decided one is continued first', async () => {
    const dir = tempDir('keel-sub-unfinished-');
    const marker = join(dir, 'asked-once');
    const file = join(dir, 'lead.agent.ts');
    writeFileSync(
      file,
      `import { existsSync, writeFileSync } from 'node:fs';
import { approvals, defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const sign = defineTool({
  name: 'sign', description: 'Signs.', args: z.object({ what: z.string() }), effect: 'unsafe',
  approval: approvals.always('signing needs a person'),
  run: ({ what }) => 'signed ' + what,
});
const signer = defineAgent({
  name: 'signer', instructions: 'Sign.', tools: [sign],
  model: scriptedModel(({ turn, input, toolResults }) => turn === 0 ? { toolCalls: [{ name: 'sign', args: { what: input } }] } : toolResults[0]?.content ?? 'nothing'),
});
// Asks the signer the first time only; when it runs again, it no longer waits for it.
const ask = defineTool({
  name: 'ask', description: 'Asks the signer once.', args: z.object({}), effect: 'idempotent',
  run: async (_args, ctx) => {
    if (existsSync(${JSON.stringify(marker)})) return 'did not wait';
    writeFileSync(${JSON.stringify(marker)}, '');
    return ctx.subAgent(signer, 'the lease');
  },
});
export default defineAgent({
  name: 'lead', instructions: 'Ask.', tools: [ask],
  model: scriptedModel(({ turn, toolResults }) => turn === 0 ? { toolCalls: [{ name: 'ask' }] } : 'lead: ' + (toolResults[0]?.content ?? '')),
});
`,
    );
    const keel = keelIn(dir);
    const started = await keel('run', file, '--input', 'go', '--json');
    assert.equal(started.code, 3, describeOutcome(started));
    const { run, approvals } = JSON.parse(started.stdout) as { run: RunRecord; approvals: ApprovalRecord[] };
    assert.equal((await keel('approve', approvals[0]!.id, '--no-resume')).code, 0);
    const resumed = await keel('resume', run.id, '--json');
    assert.equal(resumed.code, 0, describeOutcome(resumed));
    const signerRun = await showRun(approvals[0]!.runId, join(dir, 'keel.db'), { cwd: dir });
    assert.equal(signerRun.run.state, 'completed', 'the decision was applied before the parent completed');
    assert.equal(signerRun.run.result, 'signed the lease');
    assert.equal((JSON.parse(resumed.stdout) as { run: RunRecord }).run.result, 'lead: did not wait');
  });

  it('refuses a decision on an ended run before anything is recorded', async () => {
    const dir = tempDir('keel-sub-ended-');
    const keel = keelIn(dir);
    const started = await keel('run', TRIP, '--input', 'p3:UA66:HOTEL-B:CAR-A', '--json');
    assert.equal(started.code, 3, describeOutcome(started));
    const { run, approvals } = JSON.parse(started.stdout) as { run: RunRecord; approvals: ApprovalRecord[] };
    // Cancelled while it waits (as Restate cancels a workflow): the run ends, and its decision can no longer be made.
    const store = await openStore(join(dir, 'keel.db'));
    try {
      await store.finishRun({ runId: run.id, state: 'cancelled', result: null, error: 'Cancelled.', endedAt: Date.now(), at: Date.now() });
    } finally {
      await store.close();
    }
    const refused = await keel('approve', approvals[0]!.id);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^keel: Run run_\w+ has ended \(cancelled\), so approval appr_\w+ can no longer be decided\.\n$/);
    const listed = JSON.parse((await keel('approvals', '--json')).stdout) as ApprovalRecord[];
    assert.equal(listed[0]?.status, 'pending', 'nothing was recorded');
  });
});
