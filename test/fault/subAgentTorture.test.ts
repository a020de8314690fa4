import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isOwnerAlive } from '../../src/runtime/agent/owner';
import type { ApprovalRecord, CheckpointStore, RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { TERMINAL_STATES } from '../../src/runtime/store/checkpointStore';
import { openStore } from '../../src/runtime/store/openStore';
import { runTree } from '../../src/runtime/store/runTree';
import { startBookingApi, type BookingApi } from '../support/bookingApi';
import { describeOutcome, keelUntil, type KeelOutcome, type KillPlan } from '../support/keelCli';
import { REPO_ROOT, testEnv } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { seededRandom } from '../support/seededRandom';
import { useTempDirs } from '../support/tempDir';
import { PRICES } from './fixtures/prices';

/**
 * The sub-agent torture: a trip agent (fixtures/trip.agent.ts) quotes and charges in one model
 * turn, then starts two sub-agents in one turn, each charging; charges over $300 need a person,
 * in the parent as in the sub-agents. What each run books is drawn at random (seeded), so runs
 * need no decision, some in the parent, some in one or both sub-agents. While runs go, this test
 * SIGKILLs, at random points, every process that can touch them: `keel run`, `keel resume`,
 * `keel approve`, `keel reject`, `keel resolve`, and the runtime process while the editor
 * decides through it. Unknown outcomes are settled from the booking API's own record. Over every
 * run: no duplicate charge, no lost charge, no run completed with an unfinished or undecided
 * sub-agent run, and the database passes `PRAGMA integrity_check`.
 */

const AGENT = join(REPO_ROOT, 'test', 'fault', 'fixtures', 'trip.agent.ts');
const RUNS = Number(process.env['KEEL_SUB_TORTURE_RUNS'] ?? 200);
const CONCURRENCY = 4;
const SEED = Number(process.env['KEEL_TORTURE_SEED'] ?? Date.now() % 1_000_000);
const MAX_PROCESSES_PER_RUN = 60;
const HEADER = /^trip run_[0-9a-z]+ · /m;
const THRESHOLD = 300;

type Command = 'run' | 'resume' | 'approve' | 'reject' | 'resolve' | 'runtime process';
const COMMANDS: readonly Command[] = ['run', 'resume', 'approve', 'reject', 'resolve', 'runtime process'];

interface Counts {
  runs: number;
  processes: number;
  kills: Map<Command, number>;
  decisions: { approve: number; reject: number; retry: number; done: number; inEditor: number };
  charges: number;
  lost: number;
  completedWithOpenChildren: number;
}

describe('sub-agent crash torture (approvals in parents and sub-agents, SIGKILL of every command)', function () {
  this.timeout(20 * 60_000);
  const tempDir = useTempDirs();
  let api: BookingApi;

  before(async () => {
    api = await startBookingApi();
  });

  after(async () => {
    await api.close();
  });

  it(`${RUNS} trips: no duplicate or lost charge, no run completed before its sub-agents, an intact database`, async () => {
    const started = Date.now();
    const random = seededRandom(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const dir = tempDir('keel-sub-torture-');
    const db = join(dir, 'keel.db');
    const env = testEnv({ BOOKING_API_URL: api.url, NODE_COMPILE_CACHE: join(dir, 'node-compile-cache') });
    const store: CheckpointStore = await openStore(db);
    const counts: Counts = {
      runs: 0,
      processes: 0,
      kills: new Map(COMMANDS.map((command) => [command, 0])),
      decisions: { approve: 0, reject: 0, retry: 0, done: 0, inEditor: 0 },
      charges: 0,
      lost: 0,
      completedWithOpenChildren: 0,
    };

    /** A kill plan: never, a random moment after start, or a random moment after the run's header. */
    const plan = (chance: number, spreadMs: number): KillPlan | undefined => {
      const draw = random();
      if (draw >= chance) return undefined;
      return draw < chance / 3 ? { delayMs: Math.floor(random() * 250) } : { after: HEADER, delayMs: Math.floor(random() * spreadMs) };
    };

    async function keel(command: Command, args: readonly string[], kill: KillPlan | undefined): Promise<KeelOutcome> {
      counts.processes += 1;
      const outcome = await keelUntil([...args, '--db', db], kill, { cwd: dir, env, timeoutMs: 60_000 });
      if (outcome.killed) counts.kills.set(command, (counts.kills.get(command) ?? 0) + 1);
      else assert.ok(outcome.code === 0 || outcome.code === 3, `keel ${args.join(' ')}: ${describeOutcome(outcome)}`);
      return outcome;
    }

    /** The editor decides through its runtime process, which continues the tree; killed at random while it does. */
    async function decideInEditor(approval: ApprovalRecord, request: { action: 'approve'; argsHash: string } | { action: 'reject'; reason: string }): Promise<void> {
      counts.processes += 1;
      counts.decisions.inEditor += 1;
      const daemon = new RuntimeProcess(dir, { BOOKING_API_URL: api.url });
      try {
        await daemon.request('initialize', { workspaceRoot: dir, settings: { 'keel.databasePath': db } });
        const killAfter = random() < 0.5 ? Math.floor(random() * 400) : undefined;
        const timer = killAfter === undefined ? undefined : setTimeout(() => void daemon.kill(), killAfter);
        try {
          const { resumed } = await daemon.request('decide', { approvalId: approval.id, request });
          if (resumed) await daemon.until((event) => event.type === 'run_finished' && event.run.parentRunId === null, 'the tree stopping', 60_000);
        } catch (error) {
          if (daemon.running) throw error;
        } finally {
          clearTimeout(timer);
        }
        if (!daemon.running) counts.kills.set('runtime process', (counts.kills.get('runtime process') ?? 0) + 1);
      } finally {
        await daemon.kill();
      }
    }

    /** Every run of a tree, the root first. */
    async function treeOf(rootId: string): Promise<RunRecord[]> {
      const runs: RunRecord[] = [];
      for (const id of await runTree(store, rootId)) {
        const run = await store.getRun(id);
        if (run) runs.push(run);
      }
      return runs;
    }

    async function pendingOf(tree: readonly RunRecord[]): Promise<ApprovalRecord[]> {
      const ids = new Set(tree.map((run) => run.id));
      return (await store.listApprovals({ status: 'pending' })).filter((approval) => ids.has(approval.runId));
    }

    async function findRoot(input: string): Promise<RunRecord | undefined> {
      return (await store.listRuns({ limit: 100_000 })).find((run) => run.input === input && run.parentRunId === null);
    }

    async function torture(index: number): Promise<void> {
      const input = `trip-${String(index).padStart(4, '0')}:${pick(['UA66', 'KL642', 'TP202', 'RAIL-9'])}:${pick(['HOTEL-A', 'HOTEL-B'])}:${pick(['CAR-A', 'CAR-B'])}`;
      let processes = 0;
      const next = () => {
        processes += 1;
        assert.ok(processes <= MAX_PROCESSES_PER_RUN, `${input}: not completed after ${processes} processes`);
      };
      let root: RunRecord | undefined;
      while (!root) {
        next();
        await keel('run', ['run', AGENT, '--input', input], plan(0.6, 400));
        root = await findRoot(input);
      }
      for (;;) {
        await store.markInterrupted(isOwnerAlive, Date.now());
        const tree = await treeOf(root.id);
        const [top] = tree;
        assert.ok(top);
        if (top.state === 'completed') break;
        assert.ok(top.state === 'interrupted' || top.state === 'waiting_approval', `${input}: the trip is ${top.state} (${top.error ?? ''})`);
        next();
        const pending = await pendingOf(tree);
        const approval = pending.length > 0 ? pick(pending) : undefined;
        if (!approval) {
          await keel('resume', ['resume', root.id], plan(0.4, 400));
        } else if (approval.kind === 'unknown_outcome') {
          // Settled from the booking API's own record of the key: charged or not.
          const step = (await store.getSteps(approval.runId)).find((candidate) => candidate.seq === approval.seq);
          const charged = step?.idempotencyKey ? await api.booking(step.idempotencyKey) : undefined;
          if (charged) counts.decisions.done += 1;
          else counts.decisions.retry += 1;
          await keel('resolve', ['resolve', approval.id, ...(charged ? ['--done', JSON.stringify(charged)] : ['--retry'])], plan(0.3, 300));
        } else if (random() < 0.2) {
          const reject = random() < 0.25;
          if (reject) counts.decisions.reject += 1;
          else counts.decisions.approve += 1;
          await decideInEditor(approval, reject ? { action: 'reject', reason: 'not this one' } : { action: 'approve', argsHash: approval.argsHash });
        } else if (random() < 0.2) {
          counts.decisions.reject += 1;
          await keel('reject', ['reject', approval.id, '--reason', 'not this one'], plan(0.3, 300));
        } else {
          counts.decisions.approve += 1;
          await keel('approve', ['approve', approval.id], plan(0.3, 300));
        }
      }
      await checkTrip(input, root.id);
      counts.runs += 1;
    }

    /** The journals, the decisions and the booking API agree: every charge once, none lost, nothing left open. */
    async function checkTrip(input: string, rootId: string): Promise<void> {
      const tree = await treeOf(rootId);
      const open = tree.filter((run) => !TERMINAL_STATES.includes(run.state));
      const undecided = await pendingOf(tree);
      if (open.length > 0 || undecided.length > 0) counts.completedWithOpenChildren += 1;
      assert.deepEqual(open.map((run) => [run.agent, run.state]), [], `${input}: completed with unfinished sub-agent runs`);
      assert.deepEqual(undecided.map((approval) => approval.id), [], `${input}: completed with undecided approvals`);
      const ended = (run: RunRecord) => (run.state === 'completed' ? 'completed' : `${run.agent} ${run.state}: ${run.error ?? ''}`);
      assert.deepEqual(tree.map(ended), tree.map(() => 'completed'), `${input}: every run of the tree completed (seed ${SEED})`);
      assert.equal(tree.length, 3, `${input}: the trip and its hotel and car sub-agent runs`);

      const decisions = new Map<string, ApprovalRecord>();
      for (const run of tree) {
        for (const approval of await store.listApprovals({ runId: run.id })) if (approval.kind === 'policy') decisions.set(`${approval.runId}:${approval.seq}`, approval);
      }
      const charges: { run: RunRecord; step: StepRecord }[] = [];
      for (const run of tree) for (const step of await store.getSteps(run.id)) if (step.name === 'charge') charges.push({ run, step });
      assert.equal(charges.length, 3, `${input}: one charge in the trip and one in each sub-agent`);
      const booked = new Set<string>();
      for (const run of tree) for (const booking of (await api.ledger(run.id)).bookings) booked.add(booking.key);

      for (const { run, step } of charges) {
        const key = step.idempotencyKey ?? '';
        const item = (JSON.parse((step.input as { arguments: string }).arguments) as { item: string }).item;
        const approval = decisions.get(`${run.id}:${step.seq}`);
        const needed = (PRICES[item] ?? 0) > THRESHOLD;
        assert.equal(approval !== undefined, needed, `${input}: ${run.agent} charging ${item} asks a person exactly when it is over $${THRESHOLD}`);
        const rejected = approval?.decision?.action === 'reject';
        const confirmation = await api.booking(key);
        if (rejected) {
          assert.equal(step.status, 'failed', `${input}: ${run.agent}'s rejected charge failed`);
          assert.equal(confirmation, undefined, `${input}: ${run.agent}'s rejected charge was not made`);
          continue;
        }
        if (step.status !== 'completed' || !confirmation) counts.lost += 1;
        assert.equal(step.status, 'completed', `${input}: ${run.agent}'s charge of ${item} completed (${step.error ?? ''})`);
        assert.ok(confirmation, `${input}: the booking API charged ${run.agent}'s ${item} under ${key}`);
        assert.deepEqual((step.output as { value?: unknown }).value, confirmation, `${input}: the journal holds what the API charged`);
        counts.charges += 1;
        booked.delete(key);
      }
      assert.deepEqual([...booked], [], `${input}: the API charged nothing the journals do not hold`);
    }

    let nextIndex = 0;
    const worker = async () => {
      while (nextIndex < RUNS) await torture(nextIndex++);
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      await store.close();
    }
    const integrity = new Database(db, { readonly: true });
    const check = integrity.pragma('integrity_check', { simple: true });
    integrity.close();

    const totals = await api.totals();
    const kills = COMMANDS.map((command) => `${command} ${counts.kills.get(command) ?? 0}`).join(', ');
    const { approve, reject, retry, done, inEditor } = counts.decisions;
    console.log(
      `      sub-agent torture: ${counts.runs} trips, ${counts.processes} processes, kills: ${kills}; ` +
        `decisions: ${approve} approve, ${reject} reject (${inEditor} in the editor), unknown outcomes ${retry} retry + ${done} done; ` +
        `${counts.charges} charges, ${totals.duplicates} duplicate, ${counts.lost} lost, ` +
        `${counts.completedWithOpenChildren} completed with open sub-agent runs; integrity_check ${String(check)}; seed ${SEED}, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(counts.runs, RUNS);
    assert.equal(totals.duplicates, 0, 'nothing was charged twice');
    assert.equal(totals.conflicts, 0, 'no idempotency key was reused for another charge');
    assert.equal(counts.lost, 0);
    assert.equal(counts.completedWithOpenChildren, 0);
    assert.equal(check, 'ok');
    for (const command of COMMANDS) assert.ok((counts.kills.get(command) ?? 0) > 0, `some ${command} processes were killed`);
  });
});
