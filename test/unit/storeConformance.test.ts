import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { z } from 'zod';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import { PROCESS_OWNER, isOwnerAlive } from '../../src/runtime/agent/owner';
import { Runtime } from '../../src/runtime/agent/runtime';
import { approvals as rules } from '../../src/runtime/approval/policy';
import { decide } from '../../src/runtime/approval/decide';
import { BudgetExceededError, type Amounts } from '../../src/runtime/budget/budget';
import type { FailedAttempt } from '../../src/runtime/effects/retry';
import { StoreError } from '../../src/runtime/errors';
import { alertsOf, type NewAlert } from '../../src/runtime/alerts/outbox';
import { reviewsOf, type NewReview } from '../../src/runtime/review/reviewStore';
import { memoryStoreOf } from '../../src/runtime/memory/memoryCapable';
import type { MemoryWrite, NewMemoryOp } from '../../src/runtime/memory/memoryStore';
import type { Model } from '../../src/runtime/model/model';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { UnfinishedSubRunError, type CheckpointStore, type NewApproval, type NewReservation, type NewRun, type RunRecord, type StepTransition } from '../../src/runtime/store/checkpointStore';
import { openStore } from '../../src/runtime/store/openStore';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from '../../src/runtime/store/postgresMigrations';
import { PostgresStore, openPostgresStore } from '../../src/runtime/store/postgresStore';
import { SqliteStore } from '../../src/runtime/store/sqliteStore';
import { isPostgresUrl } from '../../src/runtime/store/storeLocation';
import { KEEL } from '../support/keelCli';
import { freePort } from '../support/postgresServer';
import { runNode, testEnv } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { pgliteBackend, postgresServerBackend, sqliteBackend, type StoreBackend } from '../support/storeBackends';

/**
 * One suite of store behaviour, run against every CheckpointStore: SQLite (a file), PostgreSQL on
 * PGlite (in process) and a real PostgreSQL server. What the runtime relies on must hold on each.
 */

/** The owner of a process that no longer exists, as a crashed runtime process leaves behind. */
const DEAD_OWNER = `${hostname()}/999999/crashed`;
const T = 1_790_000_000_000;

const SQLITE = sqliteBackend();
const SERVER = postgresServerBackend();
const BACKENDS: readonly StoreBackend[] = [SQLITE, pgliteBackend(), SERVER];
/** An agent file for the CLI and the runtime process: one tool call, then an answer. */
const GREETER = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const greet = defineTool({
  name: 'greet',
  description: 'Greets someone.',
  args: z.object({ name: z.string() }),
  effect: 'idempotent',
  run: ({ name }) => 'hello ' + name,
});

export default defineAgent({
  name: 'greeter',
  instructions: 'Greet.',
  model: scriptedModel([{ toolCalls: [{ name: 'greet', args: { name: 'Ada' } }] }, 'Greeted Ada.']),
  tools: [greet],
});
`;

function newRun(id: string, createdAt: number, extra: Partial<NewRun> = {}): NewRun {
  return { id, agent: 'travel', agentFile: '/a.agent.ts', model: 'openai:x', input: 'hi', traceId: 'ab'.repeat(16), owner: 'host/1/t', createdAt, ...extra };
}

/** Step 1 of a run begun as a call to `charge` with a side effect of its own, written durably. */
function chargeBegun(runId: string, effect: 'idempotent' | 'unsafe'): StepTransition {
  const key = `${runId}:1:0`;
  return {
    begin: { runId, seq: 1, kind: 'tool', name: 'charge', input: { amount: 5 }, idempotencyKey: key, startedAt: T + 1, effect: { key, tool: 'charge', effect, argsHash: 'h5' } },
    durable: true,
  };
}

function reservation(runId: string, seq: number, budgetIds: readonly string[], amounts: Amounts, at = T): NewReservation {
  return { id: `${runId}:${seq}:0`, runId, seq, model: 'openai:gpt-4o', budgetIds, amounts, at };
}

function approvalFor(runId: string, seq: number, extra: Partial<NewApproval> = {}): NewApproval {
  return {
    id: `apr_${runId}_${seq}`,
    runId,
    seq,
    kind: 'policy',
    agent: 'travel',
    tool: 'book_flight',
    args: { flightId: 'KL642', price: 640 },
    argsHash: 'hash640',
    summary: '$640 NYC→LIS',
    reason: 'over $500',
    requestedAt: T + 10,
    deadline: T + 60_010,
    onExpiry: 'escalate',
    escalateTo: 'finance',
    ...extra,
  };
}

const usd = (value: number): Amounts => ({ inputTokens: 100, outputTokens: 50, usd: value });

for (const backend of BACKENDS) {
  describe(`CheckpointStore conformance: ${backend.name}`, function () {
    this.timeout(60_000);
    let place: string;
    const opened: CheckpointStore[] = [];

    before(async function () {
      this.timeout(120_000);
      const missing = await backend.setUp();
      if (missing === undefined) return;
      // CI installs PostgreSQL (.ci/provision.sh): there, a missing server is a failure, not a skip.
      if (process.env['CI']) throw new Error(`${backend.name} cannot run: ${missing}.`);
      process.stderr.write(`  skipping ${backend.name}: ${missing}\n`);
      this.skip();
    });
    after(() => backend.tearDown());
    beforeEach(async () => {
      place = await backend.fresh();
    });
    afterEach(async () => {
      for (const store of opened.splice(0).reverse()) await store.close().catch(() => undefined);
    });

    /** Opens a store on the test's database, as a process starting now would; closed after the test. */
    async function open(): Promise<CheckpointStore> {
      const store = await backend.open(place);
      opened.push(store);
      return store;
    }

    async function closed(store: CheckpointStore): Promise<void> {
      opened.splice(opened.indexOf(store), 1);
      await store.close();
    }

    describe('runs and their journals', () => {
      it('round-trips a run, its steps and its effects, across reopening', async () => {
        const store = await open();
        await store.createRun(newRun('run_a', T, { budget: { usd: 2 }, agentFacts: { instructions: 'Book.', requiredTools: [], toolEffects: { book: 'unsafe' } } }));
        await store.transition({
          begin: {
            runId: 'run_a',
            seq: 1,
            kind: 'tool',
            name: 'book',
            input: { flight: 'UA66', passengers: ['Ada', 'Grace'] },
            idempotencyKey: 'run_a:1:0',
            startedAt: T + 1,
            effect: { key: 'run_a:1:0', tool: 'book', effect: 'unsafe', argsHash: 'h' },
          },
          durable: true,
        });
        await store.transition({
          end: {
            runId: 'run_a',
            seq: 1,
            status: 'completed',
            output: { content: 'ok', price: 598.5 },
            error: null,
            endedAt: T + 5,
            usage: { inputTokens: 10, outputTokens: 3 },
            effectKey: 'run_a:1:0',
            costUsd: 0.0125,
          },
          begin: { runId: 'run_a', seq: 2, kind: 'model', name: 'openai:x', input: { messageCount: 3 }, idempotencyKey: null, startedAt: T + 6 },
        });
        await store.transition({
          end: { runId: 'run_a', seq: 2, status: 'completed', output: 'Booked.', error: null, endedAt: T + 8, usage: { inputTokens: 7, outputTokens: 2 }, costUsd: null },
        });
        await store.finishRun({ runId: 'run_a', state: 'completed', result: 'done', error: null, endedAt: T + 9, at: T + 9, activeMs: 8.4 });
        await closed(store);

        const reopened = await open();
        const run = await reopened.getRun('run_a');
        assert.deepEqual(run, {
          id: 'run_a',
          agent: 'travel',
          agentFile: '/a.agent.ts',
          model: 'openai:x',
          input: 'hi',
          state: 'completed',
          traceId: 'ab'.repeat(16),
          owner: 'host/1/t',
          createdAt: T,
          updatedAt: T + 9,
          endedAt: T + 9,
          stepCount: 2,
          usage: { inputTokens: 17, outputTokens: 5 },
          costUsd: 0.0125,
          costKnown: false,
          activeMs: 8,
          budget: { usd: 2 },
          agentFacts: { instructions: 'Book.', requiredTools: [], toolEffects: { book: 'unsafe' } },
          parentRunId: null,
          parentSeq: null,
          threadId: null,
          taskId: null,
          result: 'done',
          error: null,
        });
        assert.deepEqual(await reopened.getSteps('run_a'), [
          {
            runId: 'run_a',
            seq: 1,
            kind: 'tool',
            name: 'book',
            status: 'completed',
            input: { flight: 'UA66', passengers: ['Ada', 'Grace'] },
            output: { content: 'ok', price: 598.5 },
            error: null,
            idempotencyKey: 'run_a:1:0',
            attempts: 1,
            failedAttempts: [],
            costUsd: 0.0125,
            startedAt: T + 1,
            endedAt: T + 5,
          },
          {
            runId: 'run_a',
            seq: 2,
            kind: 'model',
            name: 'openai:x',
            status: 'completed',
            input: { messageCount: 3 },
            output: 'Booked.',
            error: null,
            idempotencyKey: null,
            attempts: 1,
            failedAttempts: [],
            costUsd: null,
            startedAt: T + 6,
            endedAt: T + 8,
          },
        ]);
        assert.deepEqual(await reopened.getEffects('run_a'), [
          {
            key: 'run_a:1:0',
            runId: 'run_a',
            seq: 1,
            tool: 'book',
            effect: 'unsafe',
            argsHash: 'h',
            status: 'completed',
            attempts: 1,
            result: { content: 'ok', price: 598.5 },
            error: null,
            startedAt: T + 1,
            endedAt: T + 5,
          },
        ]);
      });

      it('keeps a step in progress, with its inputs, across reopening', async () => {
        const store = await open();
        await store.createRun(newRun('run_b', T));
        await store.transition({ begin: { runId: 'run_b', seq: 1, kind: 'model', name: 'm', input: { messageCount: 2 }, idempotencyKey: null, startedAt: T + 2 } });
        await closed(store);

        const reopened = await open();
        const [step] = await reopened.getSteps('run_b');
        assert.equal(step?.status, 'in_progress');
        assert.deepEqual(step?.input, { messageCount: 2 });
        assert.equal(step?.endedAt, null);
        assert.equal((await reopened.getRun('run_b'))?.updatedAt, T + 2);
      });

      it('lists runs newest first, by state and with a limit, and resolves unique id prefixes', async () => {
        const store = await open();
        await store.createRun(newRun('run_01aaa', T + 1));
        await store.createRun(newRun('run_01aab', T + 2));
        await store.createRun(newRun('run_02ccc', T + 3));
        await store.createRun(newRun('run_1_x', T + 4));
        await store.finishRun({ runId: 'run_01aab', state: 'failed', result: null, error: 'no', endedAt: T + 5, at: T + 5 });
        assert.deepEqual((await store.listRuns()).map((run) => run.id), ['run_1_x', 'run_02ccc', 'run_01aab', 'run_01aaa']);
        assert.deepEqual((await store.listRuns({ limit: 1 })).map((run) => run.id), ['run_1_x']);
        assert.deepEqual((await store.listRuns({ states: ['failed', 'completed'] })).map((run) => run.id), ['run_01aab']);
        assert.equal(await store.resolveRunId('run_02'), 'run_02ccc');
        assert.equal(await store.resolveRunId('run_01aaa'), 'run_01aaa');
        assert.equal(await store.resolveRunId('run_1_'), 'run_1_x', 'an underscore in a prefix is itself, not a wildcard');
        await assert.rejects(store.resolveRunId('run_01'), /More than one run has an id starting with "run_01"; give more of it\./);
        await assert.rejects(store.resolveRunId('run_9'), /No run has an id starting with "run_9"\./);
        await assert.rejects(store.resolveRunId('run_0%'), /No run has an id starting with "run_0%"/);
        assert.equal(await store.getRun('run_none'), undefined);
      });

      it('links sub-agent runs to their parent, in the order they started', async () => {
        const store = await open();
        await store.createRun(newRun('run_parent', T));
        await store.createRun(newRun('run_child_b', T + 2, { parentRunId: 'run_parent', parentSeq: 3 }));
        await store.createRun(newRun('run_child_a', T + 1, { parentRunId: 'run_parent', parentSeq: 1 }));
        const children = await store.childRuns('run_parent');
        assert.deepEqual(
          children.map((run) => [run.id, run.parentRunId, run.parentSeq]),
          [
            ['run_child_a', 'run_parent', 1],
            ['run_child_b', 'run_parent', 3],
          ],
        );
        assert.deepEqual(await store.childRuns('run_child_a'), []);
      });

      it('refuses to complete a run while a sub-agent run under it is paused or unfinished, and changes nothing', async () => {
        const store = await open();
        await store.createRun(newRun('run_parent', T));
        await store.createRun(newRun('run_child', T + 1, { parentRunId: 'run_parent', parentSeq: 2 }));
        await store.finishRun({ runId: 'run_child', state: 'waiting_approval', result: null, error: 'over $300', endedAt: null, at: T + 2 });
        for (const state of ['waiting_approval', 'interrupted', 'running'] as const) {
          if (state !== 'waiting_approval') await store.finishRun({ runId: 'run_child', state: state === 'running' ? 'interrupted' : state, result: null, error: null, endedAt: null, at: T + 3 });
          if (state === 'running') await store.claimRun('run_child', 'someone', ['interrupted'], T + 4);
          await assert.rejects(
            store.finishRun({ runId: 'run_parent', state: 'completed', result: 'done', error: null, endedAt: T + 5, at: T + 5 }),
            (error: unknown) =>
              error instanceof UnfinishedSubRunError &&
              error.child.id === 'run_child' &&
              error.message.startsWith('Run run_parent cannot complete while its travel sub-agent (run run_child) is '),
            `a ${state} sub-agent run`,
          );
          assert.equal((await store.getRun('run_parent'))?.state, 'running', `nothing changed with a ${state} sub-agent run`);
        }
        // Completing is possible once the sub-agent run has ended.
        await store.finishRun({ runId: 'run_child', state: 'completed', result: 'booked', error: null, endedAt: T + 6, at: T + 6 });
        const parent = await store.finishRun({ runId: 'run_parent', state: 'completed', result: 'done', error: null, endedAt: T + 7, at: T + 7 });
        assert.equal(parent.state, 'completed');
      });
    });

    describe('the effect ledger and attempts', () => {
      it('records an effect as started before the call, its attempts, and how it ended', async () => {
        const store = await open();
        await store.createRun(newRun('run_e', T));
        await store.transition(chargeBegun('run_e', 'idempotent'));
        const [started] = await store.getEffects('run_e');
        assert.deepEqual([started?.status, started?.attempts, started?.endedAt], ['started', 1, null]);

        const interruption = (n: number): FailedAttempt => ({ attempt: n, error: 'interrupted', class: 'retry', reason: 'interrupted', at: T + 10 * n });
        await store.restartStep('run_e', 1, T + 20, interruption(1));
        await store.restartStep('run_e', 1, T + 30, interruption(2));
        let [step] = await store.getSteps('run_e');
        assert.equal(step?.attempts, 3);
        assert.equal(step?.startedAt, T + 30);
        assert.deepEqual(step?.failedAttempts, [interruption(1), interruption(2)]);
        assert.equal((await store.getEffects('run_e'))[0]?.attempts, 3);

        const failures: FailedAttempt[] = [
          { attempt: 1, error: 'HTTP 503', class: 'retry', reason: 'HTTP 503', delayMs: 100, at: T + 40 },
          { attempt: 2, error: 'HTTP 429', class: 'retry', reason: 'HTTP 429', delayMs: 1500, at: T + 41 },
        ];
        await store.recordFailedAttempts('run_e', 1, failures, 'run_e:1:0');
        [step] = await store.getSteps('run_e');
        assert.equal(step?.attempts, 3);
        assert.deepEqual(step?.failedAttempts, failures);

        await store.transition({
          end: { runId: 'run_e', seq: 1, status: 'failed', output: undefined, error: 'card declined', endedAt: T + 50, usage: { inputTokens: 0, outputTokens: 0 }, effectKey: 'run_e:1:0' },
        });
        const [effect] = await store.getEffects('run_e');
        assert.deepEqual([effect?.status, effect?.attempts, effect?.error, effect?.result, effect?.endedAt], ['failed', 3, 'card declined', null, T + 50]);
        [step] = await store.getSteps('run_e');
        assert.deepEqual([step?.status, step?.output, step?.error], ['failed', null, 'card declined']);
        // A restart of a step that is no longer in progress changes nothing.
        await store.restartStep('run_e', 1, T + 60, interruption(3));
        assert.equal((await store.getSteps('run_e'))[0]?.attempts, 3);
      });

      it('claims each attempt of a side effect once, so an execution that runs again can tell it was begun', async () => {
        const store = await open();
        await store.createRun(newRun('run_c', T));
        await store.transition(chargeBegun('run_c', 'unsafe'));
        assert.equal(await store.claimEffect('run_c:1:0', 1), true);
        assert.equal(await store.claimEffect('run_c:1:0', 1), false, 'attempt 1 was claimed already');
        assert.equal(await store.claimEffect('run_c:1:0', 2), true);
        assert.equal(await store.claimEffect('run_c:1:0', 1), false, 'an earlier attempt cannot be claimed after a later one');
        await closed(store);
        const reopened = await open();
        assert.equal(await reopened.claimEffect('run_c:1:0', 2), false, 'a claim is kept across reopening');
        assert.equal(await reopened.claimEffect('run_c:9:0', 1), true, 'an effect without an entry in the ledger is claimed');
      });
    });

    describe('approvals', () => {
      it('requests once per step and kind, keeping deadlines and escalation, and lists them', async () => {
        const store = await open();
        await store.createRun(newRun('run_p', T));
        const first = await store.requestApproval(approvalFor('run_p', 2));
        const again = await store.requestApproval(approvalFor('run_p', 2, { id: 'apr_other', reason: 'asked again' }));
        assert.deepEqual(again, first, 'the approval already recorded for that step and kind is returned');
        assert.deepEqual(first, {
          id: 'apr_run_p_2',
          runId: 'run_p',
          seq: 2,
          kind: 'policy',
          agent: 'travel',
          tool: 'book_flight',
          args: { flightId: 'KL642', price: 640 },
          argsHash: 'hash640',
          summary: '$640 NYC→LIS',
          reason: 'over $500',
          requestedAt: T + 10,
          deadline: T + 60_010,
          onExpiry: 'escalate',
          escalateTo: 'finance',
          escalatedAt: null,
          status: 'pending',
          decision: null,
          decidedBy: null,
          decidedVia: null,
          decidedAt: null,
        });
        const unknown = await store.requestApproval(approvalFor('run_p', 2, { id: 'apr_unknown', kind: 'unknown_outcome', deadline: null, onExpiry: 'reject', escalateTo: null, requestedAt: T + 20 }));
        assert.equal(unknown.id, 'apr_unknown');
        assert.equal((await store.findApproval('run_p', 2, 'unknown_outcome'))?.id, 'apr_unknown');
        assert.equal(await store.findApproval('run_p', 3, 'policy'), undefined);
        assert.deepEqual((await store.listApprovals()).map((a) => a.id), ['apr_run_p_2', 'apr_unknown']);
        assert.deepEqual((await store.listApprovals({ status: 'pending', runId: 'run_p' })).map((a) => a.id), ['apr_run_p_2', 'apr_unknown']);
        assert.deepEqual(await store.listApprovals({ status: 'decided' }), []);
        assert.deepEqual(await store.listApprovals({ runId: 'run_none' }), []);

        const escalated = await store.escalateApproval(first.id, T + 60_011, T + 120_011);
        assert.deepEqual([escalated.status, escalated.escalatedAt, escalated.deadline], ['pending', T + 60_011, T + 120_011]);
        const twice = await store.escalateApproval(first.id, T + 120_012, T + 180_012);
        assert.deepEqual([twice.escalatedAt, twice.deadline], [T + 60_011, T + 120_011], 'an approval is escalated once');
        await assert.rejects(store.escalateApproval('apr_none', T, T), /No approval apr_none\./);
      });

      it('records one decision and refuses any other, naming who decided; an expiry stands too', async () => {
        const store = await open();
        await store.createRun(newRun('run_d', T));
        const approval = await store.requestApproval(approvalFor('run_d', 1));
        const decided = await store.decideApproval(approval.id, { action: 'approve', argsHash: 'hash598', args: { flightId: 'UA66', price: 598 } }, { by: 'ada', via: 'vscode', at: T + 99 });
        assert.deepEqual(
          [decided.status, decided.decision, decided.decidedBy, decided.decidedVia, decided.decidedAt],
          ['decided', { action: 'approve', argsHash: 'hash598', args: { flightId: 'UA66', price: 598 } }, 'ada', 'vscode', T + 99],
        );
        await assert.rejects(
          store.decideApproval(approval.id, { action: 'reject', reason: 'late' }, { by: 'bob', via: 'cli', at: T + 100 }),
          (error: unknown) => error instanceof StoreError && error.message === `Approval ${approval.id} was already decided by ada; its decision stands.`,
        );
        assert.equal((await store.getApproval(approval.id))?.decidedBy, 'ada');

        const expiring = await store.requestApproval(approvalFor('run_d', 2));
        const expired = await store.decideApproval(expiring.id, { action: 'reject', reason: 'No one decided.' }, { by: 'keel', via: 'deadline', at: T + 70_000 }, true);
        assert.equal(expired.status, 'expired');
        await assert.rejects(
          store.decideApproval(expiring.id, { action: 'approve', argsHash: 'hash640' }, { by: 'ada', via: 'cli', at: T + 70_001 }),
          /expired at its deadline and was rejected; its decision stands/,
        );
        await assert.rejects(store.decideApproval('apr_none', { action: 'retry' }, { by: 'ada', via: 'cli', at: T }), /No approval apr_none\./);
        assert.deepEqual((await store.listApprovals({ status: 'expired' })).map((a) => a.id), [expiring.id]);
      });

      it('lets exactly one of many decisions made at once win', async () => {
        const stores = await Promise.all([open(), open(), open()]);
        await stores[0]!.createRun(newRun('run_race', T));
        const approval = await stores[0]!.requestApproval(approvalFor('run_race', 1));
        const people = ['ada', 'bob', 'cy', 'dee', 'eve', 'fay'];
        const outcomes = await Promise.allSettled(
          people.map(async (by, i) => stores[i % stores.length]!.decideApproval(approval.id, { action: 'reject', reason: `no, ${by}` }, { by, via: 'cli', at: T + i })),
        );
        const won = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
        assert.equal(won.length, 1, 'one decision is recorded');
        const stored = await stores[1]!.getApproval(approval.id);
        assert.equal(stored?.decidedBy, won[0]?.decidedBy);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') assert.match(String(outcome.reason), new RegExp(`already decided by ${won[0]?.decidedBy}`));
        }
      });
    });

    describe('budgets and reservations', () => {
      it('raises the budget of a budget_exceeded run, its record and its run budget, and makes it resumable; no other run', async () => {
        const store = await open();
        await store.createRun(newRun('run_over', T, { budget: { steps: 3, usd: 1 } }));
        await store.ensureBudget({ id: 'run:run_over', kind: 'run', limits: { steps: 3, usd: 1 }, at: T });
        await store.createRun(newRun('run_fine', T));
        assert.equal(await store.raiseRunBudget('run_over', { steps: 10, usd: 1 }, T + 1), undefined, 'a running run keeps its budget');
        await store.finishRun({ runId: 'run_over', state: 'budget_exceeded', result: null, error: 'Stopped: The run reached its step budget of 3 steps.', endedAt: T + 2, at: T + 2 });
        await store.finishRun({ runId: 'run_fine', state: 'completed', result: 'ok', error: null, endedAt: T + 2, at: T + 2 });

        const raised = await store.raiseRunBudget('run_over', { steps: 10, usd: 1 }, T + 3);
        assert.deepEqual([raised?.state, raised?.budget, raised?.endedAt, raised?.updatedAt], ['interrupted', { steps: 10, usd: 1 }, null, T + 3]);
        assert.deepEqual((await store.getBudgets(['run:run_over']))[0]?.limits, { steps: 10, usd: 1 });
        assert.ok(await store.claimRun('run_over', PROCESS_OWNER, ['interrupted'], T + 4));
        assert.equal(await store.raiseRunBudget('run_fine', { steps: 10 }, T + 5), undefined);
        assert.equal((await store.getRun('run_fine'))?.state, 'completed');
      });

      it('reserves all or nothing: a transition that would overspend throws and writes nothing', async () => {
        const store = await open();
        await store.createRun(newRun('run_r', T));
        await store.ensureBudget({ id: 'run:run_r', kind: 'run', limits: { usd: 1, tokens: 10_000 }, at: T });
        await store.ensureBudget({ id: 'pool:daily', kind: 'pool', limits: { usd: 0.5 }, at: T });
        await store.ensureBudget({ id: 'pool:daily', kind: 'pool', limits: { usd: 99 }, at: T + 1 });

        await store.transition({
          reserve: reservation('run_r', 1, ['run:run_r', 'pool:daily'], usd(0.375)),
          begin: { runId: 'run_r', seq: 1, kind: 'model', name: 'm', input: {}, idempotencyKey: null, startedAt: T + 1 },
        });
        await assert.rejects(
          async () => store.transition({
            reserve: reservation('run_r', 2, ['run:run_r', 'pool:daily'], usd(0.25)),
            begin: { runId: 'run_r', seq: 2, kind: 'model', name: 'm', input: {}, idempotencyKey: null, startedAt: T + 2 },
          }),
          (error: unknown) =>
            error instanceof BudgetExceededError &&
            error.budgetId === 'pool:daily' &&
            error.dimension === 'usd' &&
            error.message.startsWith("The next model call could cost up to $0.25, which would take the shared budget daily's money budget of $0.50 over"),
        );
        assert.deepEqual((await store.getSteps('run_r')).map((step) => step.seq), [1], 'the step of the refused transition was not written');
        assert.deepEqual((await store.listReservations()).map((r) => r.id), ['run_r:1:0']);
        const [run, pool] = await store.getBudgets(['run:run_r', 'pool:daily', 'pool:none']);
        assert.deepEqual(run?.reserved, usd(0.375));
        assert.deepEqual(pool?.limits, { usd: 0.5 }, 'a budget is created once');
        assert.deepEqual(pool?.reserved, usd(0.375));
        await assert.rejects(async () => store.transition({ reserve: reservation('run_r', 3, ['pool:none'], usd(0)) }), /Budget pool:none does not exist\./);

        await store.transition({
          close: { id: 'run_r:1:0', actual: { inputTokens: 80, outputTokens: 20, usd: 0.125 }, at: T + 3 },
          end: { runId: 'run_r', seq: 1, status: 'completed', output: 'x', error: null, endedAt: T + 3, usage: { inputTokens: 80, outputTokens: 20 }, costUsd: 0.125 },
        });
        const [settled] = await store.listReservations({ runId: 'run_r', status: 'settled' });
        assert.deepEqual(
          [settled?.status, settled?.actual, settled?.closedAt, settled?.budgetIds],
          ['settled', { inputTokens: 80, outputTokens: 20, usd: 0.125 }, T + 3, ['run:run_r', 'pool:daily']],
        );
        const [after] = await store.getBudgets(['pool:daily']);
        assert.deepEqual([after?.spent, after?.reserved], [{ inputTokens: 80, outputTokens: 20, usd: 0.125 }, { inputTokens: 0, outputTokens: 0, usd: 0 }]);
        // Closing again changes nothing; a release keeps nothing spent.
        await store.transition({ close: { id: 'run_r:1:0', actual: usd(9), at: T + 4 } });
        await store.transition({ reserve: reservation('run_r', 2, ['pool:daily'], usd(0.25)) });
        await store.transition({ close: { id: 'run_r:2:0', at: T + 5 } });
        const [released] = await store.listReservations({ status: 'released' });
        assert.deepEqual([released?.id, released?.actual], ['run_r:2:0', null]);
        assert.deepEqual((await store.getBudgets(['pool:daily']))[0]?.spent, { inputTokens: 80, outputTokens: 20, usd: 0.125 });
      });

      it('never overspends when many reservations race for one budget, across connections', async function () {
        this.timeout(120_000);
        const stores = await Promise.all([open(), open(), open(), open()]);
        const workers = 40;
        // Two shared budgets, named in either order: holding them in one order avoids deadlocks.
        await stores[0]!.ensureBudget({ id: 'pool:a', kind: 'pool', limits: { usd: 1 }, at: T });
        await stores[0]!.ensureBudget({ id: 'pool:b', kind: 'pool', limits: { usd: 100, tokens: 1_000_000 }, at: T });
        const runIds = Array.from({ length: workers }, (_, i) => `run_w${String(i).padStart(2, '0')}`);
        for (const runId of runIds) await stores[0]!.createRun(newRun(runId, T));
        const storeOf = (i: number) => stores[i % stores.length]!;
        const budgetsOf = (i: number) => (i % 2 === 0 ? ['pool:a', 'pool:b'] : ['pool:b', 'pool:a']);

        const reserveAll = (seq: number) =>
          Promise.allSettled(runIds.map(async (runId, i) => storeOf(i).transition({ reserve: reservation(runId, seq, budgetsOf(i), usd(0.125), T + seq) })));
        const granted = (outcomes: PromiseSettledResult<void>[]) => outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [runIds[i]!] : []));
        const refusals = (outcomes: PromiseSettledResult<void>[]) => outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));

        const first = await reserveAll(1);
        assert.equal(granted(first).length, 8, 'exactly as many $0.125 reservations as $1 holds');
        for (const reason of refusals(first)) assert.ok(reason instanceof BudgetExceededError && reason.budgetId === 'pool:a', String(reason));
        let [a] = await stores[1]!.getBudgets(['pool:a']);
        assert.deepEqual([a?.reserved.usd, a?.spent.usd], [1, 0]);
        assert.equal((await stores[2]!.listReservations({ status: 'held' })).length, 8, 'a refused reservation leaves nothing held');

        // Settled for half of what each held: half of the budget is spent, none held.
        await Promise.all(granted(first).map((runId) => storeOf(runIds.indexOf(runId)).transition({ close: { id: `${runId}:1:0`, actual: usd(0.0625), at: T + 10 } })));
        [a] = await stores[3]!.getBudgets(['pool:a']);
        assert.deepEqual([a?.reserved.usd, a?.spent.usd], [0, 0.5]);

        const second = await reserveAll(2);
        assert.equal(granted(second).length, 4, 'the half left holds four more');
        await Promise.all(granted(second).map((runId) => storeOf(runIds.indexOf(runId)).transition({ close: { id: `${runId}:2:0`, at: T + 20 } })));
        const [finalA, finalB] = await stores[0]!.getBudgets(['pool:a', 'pool:b']);
        assert.deepEqual(finalA?.spent, { inputTokens: 800, outputTokens: 400, usd: 0.5 });
        assert.deepEqual(finalA?.reserved, { inputTokens: 0, outputTokens: 0, usd: 0 });
        assert.deepEqual(finalB?.spent, finalA?.spent, 'both budgets of each reservation moved together');
        assert.deepEqual(finalB?.reserved, finalA?.reserved);
        assert.deepEqual(
          (await stores[0]!.listReservations()).map((r) => r.status).sort(),
          [...Array<string>(4).fill('released'), ...Array<string>(8).fill('settled')],
        );
      });

      it('settles what a crashed process held at the amounts reserved, once', async () => {
        const crashed = await open();
        await crashed.createRun(newRun('run_c', T, { owner: DEAD_OWNER, budget: { usd: 1 } }));
        await crashed.ensureBudget({ id: 'run:run_c', kind: 'run', limits: { usd: 1 }, at: T });
        await crashed.transition({ reserve: reservation('run_c', 1, ['run:run_c'], usd(0.25)) });
        await closed(crashed);

        const store = await open();
        const [held] = await store.listReservations({ status: 'held' });
        assert.equal(held?.id, 'run_c:1:0');
        const settled = await store.settleHeld('run_c', T + 100);
        assert.deepEqual(
          settled.map((r) => [r.id, r.status, r.actual, r.closedAt]),
          [['run_c:1:0', 'settled', usd(0.25), T + 100]],
        );
        const [budget] = await store.getBudgets(['run:run_c']);
        assert.deepEqual([budget?.spent, budget?.reserved], [usd(0.25), { inputTokens: 0, outputTokens: 0, usd: 0 }]);
        assert.deepEqual(await store.settleHeld('run_c', T + 200), []);
      });
    });

    describe('circuit breakers', () => {
      it('adds every process\'s counts to one window, opens and closes one circuit, and forgets what left the window', async () => {
        const store = await open();
        const at = T;
        const base = { name: 'tool lookup', since: at - 60_000, at };
        assert.deepEqual(await store.tallyBreaker({ ...base, bucket: at - 10_000, successes: 2, failures: 3 }), { successes: 2, failures: 3, openUntil: null, reason: null });
        assert.deepEqual(await store.tallyBreaker({ ...base, bucket: at - 10_000, successes: 1, failures: 4 }), { successes: 3, failures: 7, openUntil: null, reason: null });
        assert.deepEqual(
          await store.tallyBreaker({ ...base, bucket: at, successes: 0, failures: 0, openUntil: at + 30_000, reason: '7 of 10 calls failed within 60 s' }),
          { successes: 0, failures: 0, openUntil: at + 30_000, reason: '7 of 10 calls failed within 60 s' },
          'an open circuit counts afresh',
        );
        await store.tallyBreaker({ ...base, bucket: at + 5_000, successes: 1, failures: 0, at: at + 5_000 });
        assert.deepEqual(
          await store.tallyBreaker({ ...base, bucket: at + 30_000, successes: 0, failures: 0, close: true, at: at + 30_000, since: at - 30_000 }),
          { successes: 0, failures: 0, openUntil: null, reason: '7 of 10 calls failed within 60 s' },
        );
        assert.deepEqual(
          await store.tallyBreaker({ name: 'tool other', bucket: at, successes: 1, failures: 1, since: at - 60_000, at }),
          { successes: 1, failures: 1, openUntil: null, reason: null },
          'each dependency counts apart',
        );
      });
    });

    describe('owners', () => {
      it('marks the runs of dead processes interrupted, and lets one process claim each', async () => {
        const [first, second] = await Promise.all([open(), open()]);
        await first!.createRun(newRun('run_dead', T, { owner: DEAD_OWNER }));
        await first!.createRun(newRun('run_live', T + 1, { owner: PROCESS_OWNER }));
        await first!.createRun(newRun('run_remote', T + 2, { owner: 'elsewhere.example/42/abc' }));
        await first!.createRun(newRun('run_done', T + 3, { owner: DEAD_OWNER }));
        await first!.finishRun({ runId: 'run_done', state: 'completed', result: 'ok', error: null, endedAt: T + 4, at: T + 4 });

        const marked = await second!.markInterrupted(isOwnerAlive, T + 10);
        assert.deepEqual(
          marked.map((run) => [run.id, run.state, run.error, run.updatedAt]),
          [['run_dead', 'interrupted', 'The runtime process running it stopped before it finished.', T + 10]],
        );
        assert.deepEqual(await first!.markInterrupted(isOwnerAlive, T + 11), []);
        assert.deepEqual((await first!.listRuns({ states: ['running'] })).map((run) => run.id), ['run_remote', 'run_live']);

        const claims = await Promise.all([first!, second!, first!, second!].map((store, i) => store.claimRun('run_dead', `${hostname()}/${i}/claimer`, ['interrupted', 'waiting_approval'], T + 20)));
        const winners = claims.filter((run) => run !== undefined);
        assert.equal(winners.length, 1, 'one process claims the run');
        assert.deepEqual([winners[0]?.state, winners[0]?.error], ['running', null]);
        assert.equal((await first!.getRun('run_dead'))?.owner, winners[0]?.owner);
        assert.equal(await first!.claimRun('run_done', PROCESS_OWNER, ['interrupted'], T + 30), undefined);
      });
    });

    describe('threads', () => {
      it('keeps a thread per agent, its runs in the order they ended, its newest summary, and detaches runs when deleted', async () => {
        const store = memoryStoreOf(await open(), 'the conformance suite');
        const created = await store.threads.ensure({ id: 'trip-42', agent: 'travel', title: '  Plan   a trip\nto Lisbon ', at: T });
        assert.deepEqual(created, { id: 'trip-42', agent: 'travel', title: 'Plan a trip to Lisbon', createdAt: T, updatedAt: T, runCount: 0, summary: null });
        await assert.rejects(async () => store.threads.ensure({ id: 'trip-42', agent: 'booking', title: 'x', at: T + 1 }), /Thread trip-42 is a conversation with the agent "travel", not "booking"/);
        assert.equal((await store.threads.ensure({ id: 'trip-42', agent: 'travel', title: 'x', at: T + 5 })).updatedAt, T + 5);
        assert.equal((await store.threads.ensure({ id: 'trip-42', agent: 'travel', title: 'x', at: T + 2 })).updatedAt, T + 5, 'an older time does not move it back');

        await store.createRun(newRun('run_t1', T + 10, { threadId: 'trip-42', taskId: 'task-1' }));
        await store.createRun(newRun('run_t2', T + 11, { threadId: 'trip-42' }));
        await store.createRun(newRun('run_t3', T + 12, { threadId: 'trip-42' }));
        await store.finishRun({ runId: 'run_t2', state: 'completed', result: 'a', error: null, endedAt: T + 20, at: T + 20 });
        await store.finishRun({ runId: 'run_t1', state: 'completed', result: 'b', error: null, endedAt: T + 30, at: T + 30 });
        assert.deepEqual((await store.threadRuns('trip-42')).map((run) => [run.id, run.threadId]), [
          ['run_t2', 'trip-42'],
          ['run_t1', 'trip-42'],
          ['run_t3', 'trip-42'],
        ]);
        assert.equal((await store.getRun('run_t1'))?.taskId, 'task-1');

        await store.createRun(newRun('run_loose', T + 40, { input: 'What next?' }));
        const attached = await store.threads.attachRun('run_loose', 'next-steps', T + 41);
        assert.deepEqual([attached.id, attached.agent, attached.title, attached.runCount], ['next-steps', 'travel', 'What next?', 1]);
        await assert.rejects(async () => store.threads.attachRun('run_loose', 'trip-42', T + 42), /Run run_loose is already in thread next-steps\./);
        await assert.rejects(async () => store.threads.attachRun('run_none', 'trip-42', T + 42), /There is no run run_none\./);

        const summary = (coveredRuns: number) => ({ text: `${coveredRuns} runs`, channel: 'user' as const, throughRunId: 'run_t1', coveredRuns, runId: 'run_t3', seq: 1, at: T + 50 });
        await store.threads.setSummary('trip-42', summary(2));
        await store.threads.setSummary('trip-42', summary(1));
        assert.deepEqual((await store.threads.get('trip-42'))?.summary, summary(2), 'an older summary changes nothing');
        await store.threads.setSummary('trip-42', summary(10));
        assert.equal((await store.threads.get('trip-42'))?.summary?.coveredRuns, 10, 'compared as numbers, not as text');
        assert.deepEqual((await store.threads.list()).map((thread) => [thread.id, thread.runCount]), [
          ['next-steps', 1],
          ['trip-42', 3],
        ]);
        assert.deepEqual(await store.threads.delete('trip-42'), { deleted: true, detachedRuns: 3 });
        assert.deepEqual(await store.threads.delete('trip-42'), { deleted: false, detachedRuns: 0 });
        assert.equal((await store.getRun('run_t1'))?.threadId, null);
        assert.equal(await store.threads.get('trip-42'), undefined);
      });
    });

    describe('memory', () => {
      const write = (key: string, value: unknown, extra: Partial<MemoryWrite> = {}): MemoryWrite => ({
        namespace: 'user:ada',
        key,
        value,
        text: typeof value === 'string' ? value : JSON.stringify(value),
        channel: 'user',
        writtenBy: 'cli:ada',
        at: T,
        ...extra,
      });

      it('keeps values by namespace and key, with revisions, and refuses a write on a value that changed', async () => {
        const store = memoryStoreOf(await open(), 'the conformance suite');
        const first = await store.memory.put(write('diet', 'vegetarian'));
        assert.deepEqual(first, {
          namespace: 'user:ada',
          key: 'diet',
          value: 'vegetarian',
          channel: 'user',
          schema: 1,
          revision: 1,
          writtenBy: 'cli:ada',
          createdAt: T,
          updatedAt: T,
        });
        const second = await store.memory.put(write('diet', { kind: 'vegan', since: 2024 }, { at: T + 5, writtenBy: 'run:run_x:3', channel: 'tool_output', expectedRevision: 1 }));
        assert.deepEqual([second.revision, second.value, second.channel, second.createdAt, second.updatedAt], [2, { kind: 'vegan', since: 2024 }, 'tool_output', T, T + 5]);
        await assert.rejects(async () => store.memory.put(write('diet', 'x', { expectedRevision: 1 })), /user:ada\/diet changed since it was read \(it is at revision 2 now, not 1\); read it again\./);
        await assert.rejects(async () => store.memory.put(write('diet', 'x', { expectedRevision: null })), /it is at revision 2 now, not new/);
        await assert.rejects(async () => store.memory.put(write('gone', 'x', { expectedRevision: 3 })), /user:ada\/gone was deleted since it was read\./);
        await store.memory.put(write('airport', 'LIS'));
        await store.memory.put(write('deploy-notes', 'blue green', { namespace: 'project' }));

        assert.deepEqual((await store.memory.list('user:ada')).map((item) => item.key), ['airport', 'diet']);
        assert.deepEqual((await store.memory.list('user:ada', { limit: 1 })).map((item) => item.key), ['airport']);
        assert.deepEqual(await store.memory.namespaces(), [
          { namespace: 'project', count: 1, updatedAt: T },
          { namespace: 'user:ada', count: 2, updatedAt: T + 5 },
        ]);
        assert.equal(await store.memory.delete('user:ada', 'airport'), true);
        assert.equal(await store.memory.delete('user:ada', 'airport'), false);
        assert.equal(await store.memory.get('user:ada', 'airport'), undefined);
      });

      it('lets one of two writers of a new value win, and journals memory operations in order', async () => {
        const [a, b] = await Promise.all([open(), open()]);
        await a!.createRun(newRun('run_m', T));
        const stores = [memoryStoreOf(a!, 'the suite'), memoryStoreOf(b!, 'the suite')];
        const outcomes = await Promise.allSettled(stores.map((store, i) => store.memory.put(write('seat', `seat ${i}`, { expectedRevision: null }))));
        assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1);
        assert.equal((await stores[0]!.memory.get('user:ada', 'seat'))?.revision, 1);

        const op = (seq: number, opIndex: number, kind: NewMemoryOp['op'], key: string | null) => ({
          runId: 'run_m',
          seq,
          opIndex,
          op: kind,
          namespace: 'user:ada',
          key,
          request: { key },
          startedAt: T + seq,
        });
        const read = await stores[1]!.memory.recordOp(op(2, 0, 'get', 'seat'), { found: true }, T + 3);
        assert.equal(read.schema, 1);
        await stores[0]!.memory.put(write('meal', 'veg', { at: T + 4 }), op(2, 1, 'put', 'meal'));
        await stores[1]!.memory.delete('user:ada', 'meal', op(4, 0, 'delete', 'meal'), T + 9);
        await stores[0]!.memory.recordOp(op(0, 0, 'thread.load', null), [], T);
        const ops = await stores[1]!.memory.ops('run_m');
        assert.deepEqual(
          ops.map((record) => [record.seq, record.opIndex, record.op, record.endedAt]),
          [
            [0, 0, 'thread.load', T],
            [2, 0, 'get', T + 3],
            [2, 1, 'put', T + 4],
            [4, 0, 'delete', T + 9],
          ],
        );
        assert.deepEqual(ops[2]?.result, { namespace: 'user:ada', key: 'meal', value: 'veg', channel: 'user', schema: 1, revision: 1, writtenBy: 'cli:ada', createdAt: T + 4, updatedAt: T + 4 });
        assert.deepEqual(ops[3]?.result, { deleted: true });
        assert.deepEqual(ops[1]?.request, { key: 'seat' });
      });

      it('finds values by keyword in the namespaces asked, best first, and keeps vectors per revision', async () => {
        const store = memoryStoreOf(await open(), 'the conformance suite');
        await store.memory.put(write('lisbon-hotels', 'Hotels near the Lisbon waterfront', { embedding: { embedder: 'test:e', vector: [0.5, -1, 0.25] } }));
        await store.memory.put(write('packing', 'Bring a jacket for Lisbon evenings'));
        await store.memory.put(write('porto', 'Porto wine cellars'));
        await store.memory.put(write('lisbon-trams', 'Tram 28', { namespace: 'project' }));
        const hits = await store.memory.search(['user:ada'], 'Lisbon hotels', 10);
        assert.deepEqual(hits.map((hit) => hit.item.key), ['lisbon-hotels', 'packing']);
        assert.ok(hits[0]!.score > hits[1]!.score && hits[1]!.score > 0);
        assert.deepEqual((await store.memory.search(['user:ada', 'project'], 'lisb', 10)).map((hit) => hit.item.key).sort(), ['lisbon-hotels', 'lisbon-trams', 'packing']);
        assert.deepEqual(await store.memory.search(['user:ada'], '  ', 10), []);
        assert.deepEqual(await store.memory.search([], 'lisbon', 10), []);
        assert.equal((await store.memory.search(['user:ada'], 'lisbon', 1)).length, 1);

        const vectors = await store.memory.vectors(['user:ada'], 'test:e');
        assert.deepEqual(
          vectors.map((entry) => [entry.item.key, entry.vector]),
          [
            ['lisbon-hotels', [0.5, -1, 0.25]],
            ['packing', null],
            ['porto', null],
          ],
        );
        await store.memory.setVector('user:ada', 'packing', 1, 'test:e', [1, 0, 0]);
        await store.memory.setVector('user:ada', 'porto', 7, 'test:e', [0, 1, 0]);
        assert.deepEqual((await store.memory.vectors(['user:ada'], 'test:e')).map((entry) => entry.vector), [[0.5, -1, 0.25], [1, 0, 0], null]);
        assert.deepEqual((await store.memory.vectors(['user:ada'], 'other')).map((entry) => entry.vector), [null, null, null]);
      });
    });

    describe('the alert outbox', () => {
      const alert = (key: string, at: number, dedupKey = key): NewAlert => ({
        key,
        dedupKey,
        event: 'run_failed',
        severity: 'error',
        title: `t ${key}`,
        body: 'b',
        runId: null,
        facts: { n: 1 },
        at,
      });
      const claimAll = (store: CheckpointStore, owner: string, now: number, isOwnerAlive: (owner: string) => boolean = () => true) =>
        alertsOf(store).claim({ owner, now, leaseMs: 1_000, limit: 10, targets: () => true, isOwnerAlive });

      it('records an alert once per key, with a pending delivery per target; a like one within the dedup window is a repeat', async () => {
        const outbox = alertsOf(await open());
        const first = await outbox.enqueue(alert('run_failed:run_a', T, 'group'), ['ops', 'mail'], 60_000);
        assert.deepEqual(first?.deliveries.map((delivery) => [delivery.target, delivery.status, delivery.attempts]), [
          ['mail', 'pending', 0],
          ['ops', 'pending', 0],
        ]);
        assert.deepEqual(first?.facts, { n: 1 });
        assert.equal(await outbox.enqueue(alert('run_failed:run_a', T + 5), ['ops'], 60_000), undefined, 'the same key');
        assert.equal(await outbox.enqueue(alert('run_failed:run_b', T + 10, 'group'), ['ops'], 60_000), undefined, 'within the window');
        assert.ok(await outbox.enqueue(alert('run_failed:run_c', T + 60_001, 'group'), ['ops'], 60_000), 'after the window');
        const listed = await outbox.list();
        assert.deepEqual(listed.map((item) => [item.key, item.repeats]), [
          ['run_failed:run_c', 0],
          ['run_failed:run_a', 1],
        ]);
      });

      it('leases a due delivery to one process at a time; a lease that ran out or whose owner is gone is taken over; only the holder settles it', async () => {
        const store = await open();
        const outbox = alertsOf(store);
        await outbox.enqueue(alert('k', T), ['ops'], 0);
        const [mine] = await claimAll(store, 'host/1/a', T);
        assert.equal(mine?.delivery.attempts, 1);
        assert.deepEqual(await claimAll(store, 'host/2/b', T + 10), [], 'leased');
        const [dead] = await claimAll(store, 'host/2/b', T + 20, (owner) => owner !== 'host/1/a');
        assert.equal(dead?.delivery.attempts, 2, 'a gone owner loses its lease at once');
        assert.equal(await outbox.settle(dead?.alert.id ?? '', 'ops', 'host/1/a', { sent: true, at: T + 30 }), false, 'not the holder any more');
        assert.equal(await outbox.settle(dead?.alert.id ?? '', 'ops', 'host/2/b', { sent: false, at: T + 30, error: 'HTTP 503', retryAt: T + 500 }), true);
        assert.deepEqual(await claimAll(store, 'host/3/c', T + 499), [], 'not due before its retry');
        const [again] = await claimAll(store, 'host/3/c', T + 500);
        assert.equal(again?.delivery.lastError, 'HTTP 503');
        assert.equal(await outbox.settle(again?.alert.id ?? '', 'ops', 'host/3/c', { sent: true, at: T + 600 }), true);
        const [sent] = await outbox.list({ status: 'sent' });
        assert.deepEqual([sent?.deliveries[0]?.status, sent?.deliveries[0]?.sentAt, sent?.deliveries[0]?.attempts], ['sent', T + 600, 3]);
        assert.deepEqual(await outbox.list({ status: 'pending' }), []);
      });

      it('lets one of two processes claiming at once have each delivery', async function () {
        if (!backend.concurrent) this.skip();
        const [a, b] = [await open(), await open()];
        for (let index = 0; index < 20; index++) await alertsOf(a).enqueue(alert(`k${index}`, T), ['ops'], 0);
        const [mine, theirs] = await Promise.all([claimAll(a, 'host/1/a', T), claimAll(b, 'host/2/b', T)]);
        const ids = [...mine, ...theirs].map((item) => item.alert.id);
        assert.equal(new Set(ids).size, ids.length, 'no delivery claimed twice');
      });

      it('sums spend by agent, by model and by pool within a window, from steps and settled reservations', async () => {
        const store = await open();
        await store.createRun(newRun('run_s', T, { agent: 'travel' }));
        await store.ensureBudget({ id: 'pool:team', kind: 'pool', limits: { usd: 100 }, at: T });
        await store.transition({ reserve: reservation('run_s', 1, ['pool:team'], usd(1), T) });
        await store.transition({ begin: { runId: 'run_s', seq: 1, kind: 'model', name: 'openai:gpt-4o', input: {}, idempotencyKey: null, startedAt: T } });
        await store.transition({
          end: { runId: 'run_s', seq: 1, status: 'completed', output: null, error: null, endedAt: T + 10, usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0.25 },
          close: { id: 'run_s:1:0', actual: usd(0.25), at: T + 10 },
        });
        const outbox = alertsOf(store);
        assert.equal(await outbox.spend({ agent: 'travel' }, T, T + 11), 0.25);
        assert.equal(await outbox.spend({ agent: 'other' }, T, T + 11), 0);
        assert.equal(await outbox.spend({ model: 'openai:gpt-4o' }, T, T + 11), 0.25);
        assert.equal(await outbox.spend({ pool: 'team' }, T, T + 11), 0.25);
        assert.equal(await outbox.spend({ pool: 'tea' }, T, T + 11), 0, 'a pool is matched by its whole id');
        assert.equal(await outbox.spend({}, T + 11, T + 20), 0, 'outside the window');
      });
    });

    describe('the review queue', () => {
      const sampled = (runId: string, seq: number): NewReview => ({
        id: `rev_${runId}_${seq}`,
        runId,
        seq,
        agent: 'travel',
        tool: 'book',
        effect: 'unsafe',
        args: { amount: 640 },
        outcome: { ok: true, content: 'booked' },
        reason: 'rate',
        sampledAt: T,
      });

      it('queues a sampled call once, records one verdict with who and when, and refuses a second', async () => {
        const store = await open();
        await store.createRun(newRun('run_r', T));
        const reviews = reviewsOf(store);
        assert.equal((await reviews.queue([sampled('run_r', 1), sampled('run_r', 2)])).length, 2);
        assert.equal((await reviews.queue([sampled('run_r', 1)])).length, 0, 'queued already');
        const recorded = await reviews.record('rev_run_r_1', { verdict: 'disagree', note: 'too much', by: 'ada', at: T + 5 });
        assert.deepEqual([recorded.verdict, recorded.note, recorded.reviewedBy, recorded.reviewedAt, recorded.args], ['disagree', 'too much', 'ada', T + 5, { amount: 640 }]);
        await assert.rejects(reviews.record('rev_run_r_1', { verdict: 'agree', note: null, by: 'bob', at: T + 6 }), /already has a verdict \(disagree by ada/);
        await assert.rejects(reviews.record('rev_none', { verdict: 'agree', note: null, by: 'bob', at: T + 6 }), /There is no review rev_none/);
        assert.deepEqual((await reviews.list({ status: 'pending' })).map((item) => item.id), ['rev_run_r_2']);
        assert.deepEqual((await reviews.list({ status: 'reviewed', tool: 'book' })).map((item) => item.id), ['rev_run_r_1']);
      });
    });

    describe('schema versions', () => {
      it('creates a new database at the latest version, marked as Keel\'s, and opens it again unchanged', async () => {
        const created = await open();
        await created.createRun(newRun('run_v', T));
        await closed(created);
        assert.deepEqual(await backend.version(place), { keel: true, version: backend.latest });
        const before = await backend.snapshot(place);
        const again = await open();
        assert.equal((await again.getRun('run_v'))?.id, 'run_v');
        await closed(again);
        if (backend.opensCurrentWithoutWriting) assert.equal(await backend.snapshot(place), before);
      });

      it('lets several processes open a new database at once', async () => {
        const stores = await Promise.all([open(), open(), open()]);
        await stores[2]!.createRun(newRun('run_once', T));
        assert.equal((await stores[0]!.getRun('run_once'))?.id, 'run_once');
        assert.deepEqual(await backend.version(place), { keel: true, version: backend.latest });
      });

      it('refuses a database from a newer Keel, and leaves it as it was', async () => {
        await backend.makeNewer(place, 99);
        const before = await backend.snapshot(place);
        await assert.rejects(
          open(),
          (error: unknown) =>
            error instanceof StoreError &&
            error.message.includes(`was written by a newer Keel (schema version 99; this Keel understands up to ${backend.latest})`) &&
            error.message.endsWith('it has not been changed.'),
        );
        assert.equal(await backend.snapshot(place), before);
      });

      it('refuses a database another program made, and leaves it as it was', async () => {
        await backend.makeForeign(place);
        const before = await backend.snapshot(place);
        await assert.rejects(open(), (error: unknown) => error instanceof StoreError && /Keel did not create/.test(error.message) && !error.message.includes('\n'));
        assert.equal(await backend.snapshot(place), before);
      });
    });

    describe('runs through the Runtime', () => {
      const script = () =>
        scriptedModel([{ toolCalls: [{ name: 'step', args: { n: 1 } }] }, { toolCalls: [{ name: 'step', args: { n: 2 } }] }, 'All done.']);

      /** An agent whose idempotent tool records each call's key; the call numbered `hangAt` never returns, as in a killed process. */
      function stepper(calls: string[], hangAt?: number): { agent: Agent; hung: Promise<void> } {
        let began!: () => void;
        const hung = new Promise<void>((resolve) => (began = resolve));
        const step = defineTool({
          name: 'step',
          description: 'Does a step.',
          args: z.object({ n: z.number() }),
          output: z.string(),
          effect: 'idempotent',
          run: ({ n }, ctx) => {
            calls.push(ctx.idempotencyKey);
            if (calls.length === hangAt) {
              began();
              return new Promise<never>(() => undefined);
            }
            return `step ${n} done`;
          },
        });
        return { agent: defineAgent({ name: 'stepper', instructions: 'Do the steps.', model: script(), tools: [step] }), hung };
      }

      it('completes a run, journaled step by step', async () => {
        const store = await open();
        const calls: string[] = [];
        const finished = await (await new Runtime({ store }).start(stepper(calls).agent, { input: 'go' })).done;
        assert.equal(finished.state, 'completed');
        assert.equal(finished.result, 'All done.');
        assert.equal(finished.stepCount, 5);
        await closed(store);
        const reopened = await open();
        assert.deepEqual((await reopened.getSteps(finished.id)).map((step) => [step.seq, step.kind, step.status]), [
          [1, 'model', 'completed'],
          [2, 'tool', 'completed'],
          [3, 'model', 'completed'],
          [4, 'tool', 'completed'],
          [5, 'model', 'completed'],
        ]);
        assert.deepEqual(calls, [`${finished.id}:1:0`, `${finished.id}:3:0`]);
      });

      it('resumes an interrupted run in a new connection without repeating a finished effect', async () => {
        const calls: string[] = [];
        const first = await open();
        const crashed = stepper(calls, 2);
        const handle = await new Runtime({ store: first, owner: DEAD_OWNER }).start(crashed.agent, { input: 'go' });
        await crashed.hung;
        await closed(first);

        const store = await open();
        const finished = await (await new Runtime({ store }).resume(stepper(calls).agent, handle.runId)).done;
        assert.equal(finished.state, 'completed');
        const runId = handle.runId;
        assert.deepEqual(calls, [`${runId}:1:0`, `${runId}:3:0`, `${runId}:3:0`], 'the first call came from the journal; the one in flight ran again under its key');
        assert.deepEqual(
          (await store.getEffects(runId)).map((effect) => [effect.key, effect.status, effect.attempts]),
          [
            [`${runId}:1:0`, 'completed', 1],
            [`${runId}:3:0`, 'completed', 2],
          ],
        );
      });

      it('continues a thread across runs and connections, and journals what each run read of memory', async () => {
        const seen: string[][] = [];
        const remember = defineTool({
          name: 'remember',
          description: 'Remembers where the user flies from.',
          args: z.object({ airport: z.string() }),
          effect: 'idempotent',
          run: async ({ airport }, ctx) => {
            await ctx.memory.put('user:ada', 'home', { airport });
            return 'noted';
          },
        });
        const chat = (): Agent =>
          defineAgent({
            name: 'chat',
            instructions: 'Chat.',
            model: scriptedModel(({ request, input, toolResults }) => {
              if (toolResults.length > 0) return 'Noted.';
              seen.push(request.messages.map((message) => `${message.role}: ${typeof message.content === 'string' ? message.content : ''}`));
              return input.includes('NYC') ? { toolCalls: [{ name: 'remember', args: { airport: 'NYC' } }] } : 'You fly from NYC.';
            }),
            tools: [remember],
            memory: { namespaces: ['user:*'] },
          });
        const first = await open();
        const one = await (await new Runtime({ store: first }).start(chat(), { input: 'I fly from NYC.', threadId: 'ada' })).done;
        assert.equal(one.state, 'completed', one.error ?? '');
        await closed(first);

        const store = memoryStoreOf(await open(), 'the conformance suite');
        const two = await (await new Runtime({ store }).start(chat(), { input: 'Where do I fly from?', threadId: 'ada' })).done;
        assert.equal(two.state, 'completed', two.error ?? '');
        assert.ok(seen[1]?.includes('user: I fly from NYC.') && seen[1]?.includes('assistant: Noted.'), JSON.stringify(seen[1]));
        assert.deepEqual((await store.threadRuns('ada')).map((run) => run.id), [one.id, two.id]);
        assert.deepEqual((await store.memory.get('user:ada', 'home'))?.value, { airport: 'NYC' });
        assert.deepEqual((await store.memory.ops(one.id)).map((op) => op.op), ['thread.load', 'put']);
        assert.equal((await store.threads.get('ada'))?.runCount, 2);
      });

      it('pauses for an approval, and goes on in a new connection once it is decided', async () => {
        const booked: unknown[] = [];
        const travel = (): Agent => {
          const book = defineTool({
            name: 'book_flight',
            description: 'Book a flight.',
            args: z.object({ flightId: z.string(), price: z.number() }),
            effect: 'unsafe',
            approval: { rules: [rules.amountOver(500, { field: 'price' })] },
            run: (args) => {
              booked.push(args);
              return `booked ${args.flightId}`;
            },
          });
          const model: Model = scriptedModel(({ turn, toolResults }) =>
            turn === 0 ? { toolCalls: [{ name: 'book_flight', args: { flightId: 'KL642', price: 640 } }] } : toolResults.length === 1 ? 'Booked.' : 'No result?',
          );
          return defineAgent({ name: 'travel', instructions: 'Book.', model, tools: [book] });
        };
        const first = await open();
        const paused = await (await new Runtime({ store: first }).start(travel(), { input: 'go' })).done;
        assert.equal(paused.state, 'waiting_approval');
        await closed(first);

        const store = await open();
        const [approval] = await store.listApprovals({ status: 'pending', runId: paused.id });
        assert.ok(approval);
        await decide(store, approval.id, { action: 'approve', argsHash: approval.argsHash }, { by: 'ada', via: 'cli', at: T });
        const finished = await (await new Runtime({ store }).resume(travel(), paused.id)).done;
        assert.equal(finished.state, 'completed');
        assert.equal(finished.result, 'Booked.');
        assert.deepEqual(booked, [{ flightId: 'KL642', price: 640 }]);
        assert.equal((await store.getApproval(approval.id))?.decidedBy, 'ada');
      });
    });

    if (backend !== SQLITE) {
      describe('PostgreSQL: migrations and schemas', () => {
        it('migrates an older database forward in one transaction, keeping its runs', async () => {
          const first = await backend.open(place, POSTGRES_MIGRATIONS.slice(0, 1));
          await first.close();
          assert.deepEqual(await backend.version(place), { keel: true, version: 1 });
          const store = await open();
          assert.deepEqual(await backend.version(place), { keel: true, version: POSTGRES_MIGRATIONS.length });
          await store.createRun(newRun('run_old', T));
          await closed(store);
          const addNotes: PostgresMigration = {
            description: 'notes on runs',
            up: async (db) => {
              await db.query("ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT ''");
            },
          };
          const upgraded = await backend.open(place, [...POSTGRES_MIGRATIONS, addNotes]);
          opened.push(upgraded);
          assert.equal((await upgraded.getRun('run_old'))?.id, 'run_old');
          assert.deepEqual(await backend.version(place), { keel: true, version: POSTGRES_MIGRATIONS.length + 1 });
        });

        it('leaves a database as it was when a migration fails, saying so in one sentence', async () => {
          const before = await backend.snapshot(place);
          const failing: PostgresMigration = {
            description: 'a migration that fails half way',
            up: async (db) => {
              await db.query('CREATE TABLE half_done (x INTEGER)');
              await db.query('SELECT no_such_function()');
            },
          };
          await assert.rejects(
            backend.open(place, [...POSTGRES_MIGRATIONS, failing]),
            (error: unknown) => error instanceof StoreError && /^Keel cannot set up its tables in .+: function no_such_function\(\) does not exist\.$/.test(error.message),
          );
          assert.equal(await backend.snapshot(place), before, 'not even the first migrations were kept');
        });

        it('says so when the search_path names no schema that exists', async () => {
          await assert.rejects(
            backend.open('no_such_schema'),
            (error: unknown) => error instanceof StoreError && /has no schema to use in .+: none of the schemas on its search_path exists/.test(error.message),
          );
        });
      });
    }

    if (backend === SERVER) {
      describe('PostgreSQL: connection strings', () => {
        const withPassword = (schema: string) => SERVER.urlFor(schema).replace('postgres@', 'postgres:s3cret%21@');

        it('keeps the password out of the store\'s location', async () => {
          const store = await openStore(withPassword(place));
          opened.push(store);
          assert.ok(store instanceof PostgresStore);
          assert.ok(!store.location.includes('s3cret'), store.location);
          assert.ok(store.location.startsWith(`postgresql://postgres@127.0.0.1:${SERVER.server().port}/postgres`), store.location);
          const inQuery = await openStore(`${SERVER.urlFor(place)}&password=s3cret`);
          opened.push(inQuery);
          assert.ok(!inQuery.location.includes('s3cret'), inQuery.location);
        });

        it('runs on connections the caller owns, a pg Pool or a pg Client, and leaves them open', async () => {
          const pool = new Pool({ connectionString: SERVER.urlFor(place), max: 4 });
          const client = new Client({ connectionString: SERVER.urlFor(place) });
          await client.connect();
          try {
            const onPool = await openPostgresStore({ pool, location: 'the tests\' pool' });
            await onPool.createRun(newRun('run_pool', T));
            await onPool.close();
            await assert.rejects(openPostgresStore({ client: pool }), /A pool of connections was passed as \{ client \}; pass it as \{ pool \}/);
            const onClient = await openPostgresStore({ client });
            assert.equal(onClient.location, 'a PostgreSQL database');
            assert.equal((await onClient.getRun('run_pool'))?.id, 'run_pool');
            await onClient.close();
            assert.equal(((await pool.query('SELECT count(*)::int AS n FROM runs')).rows[0] as { n: number }).n, 1);
            assert.equal(((await client.query('SELECT count(*)::int AS n FROM runs')).rows[0] as { n: number }).n, 1);
          } finally {
            await client.end();
            await pool.end();
          }
        });

        it('opens SQLite for anything that is not a postgres:// or postgresql:// URL', async () => {
          const store = await openStore(join(tmpdir(), `keel-open-${process.pid}-${Date.now()}.db`));
          opened.push(store);
          assert.ok(store instanceof SqliteStore);
          assert.ok(isPostgresUrl('postgres://h/db') && isPostgresUrl('PostgreSQL://h/db') && !isPostgresUrl('./postgres.db'));
        });

        it('says in one sentence, without the password, when the server cannot be reached', async () => {
          const port = await freePort();
          await assert.rejects(openStore(`postgresql://keel:s3cret@127.0.0.1:${port}/keel`), (error: unknown) => {
            assert.ok(error instanceof StoreError);
            assert.match(error.message, new RegExp(`^Keel cannot connect to its PostgreSQL database postgresql://keel@127\\.0\\.0\\.1:${port}/keel: .*ECONNREFUSED.*\\.$`));
            assert.ok(!error.message.includes('s3cret') && !error.message.includes('\n'));
            return true;
          });
        });

        it('is what the CLI reads and writes with --db or KEEL_DB', async function () {
          this.timeout(60_000);
          const cwd = mkdtempSync(join(tmpdir(), 'keel-cli-pg-'));
          try {
            const agentFile = join(cwd, 'greeter.agent.ts');
            writeFileSync(agentFile, GREETER);
            const url = withPassword(place);
            const ran = await runNode(KEEL, ['run', agentFile, '--input', 'Greet Ada', '--db', url], { cwd });
            assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
            const listed = await runNode(KEEL, ['runs', '--json'], { cwd, env: testEnv({ KEEL_DB: url }) });
            assert.equal(listed.code, 0, listed.stderr);
            const [run] = JSON.parse(listed.stdout) as RunRecord[];
            assert.deepEqual([run?.agent, run?.state, run?.stepCount, run?.result], ['greeter', 'completed', 3, 'Greeted Ada.']);
            const store = await open();
            assert.equal((await store.getRun(run!.id))?.result, run?.result);
            assert.ok(!existsSync(join(cwd, '.keel')), 'no SQLite file was made');
          } finally {
            rmSync(cwd, { recursive: true, force: true });
          }
        });

        it('is what the runtime process serves when the extension passes a connection string', async function () {
          this.timeout(60_000);
          const workspace = mkdtempSync(join(tmpdir(), 'keel-daemon-pg-'));
          const agentFile = join(workspace, 'greeter.agent.ts');
          writeFileSync(agentFile, GREETER);
          const daemon = new RuntimeProcess(workspace);
          try {
            const started = await daemon.request('initialize', { workspaceRoot: workspace, settings: { 'keel.databasePath': withPassword(place) } });
            assert.ok(!started.databasePath.includes('s3cret'), started.databasePath);
            assert.ok(started.databasePath.startsWith('postgresql://postgres@127.0.0.1:'), started.databasePath);
            const { runId } = await daemon.request('startRun', { agentFile, input: 'Greet Ada' });
            assert.equal((await daemon.finished(runId)).state, 'completed');
            assert.ok(!existsSync(join(workspace, '.keel')), 'no SQLite file was made');
            const store = await open();
            assert.equal((await store.getRun(runId))?.state, 'completed');
            assert.deepEqual((await daemon.request('listRuns', {})).map((run) => run.id), [runId]);
            await assert.rejects(
              daemon.request('initialize', { workspaceRoot: workspace, settings: { 'keel.databasePath': join(workspace, 'other.db') } }),
              /already serving another database/,
            );
          } finally {
            await daemon.kill();
            rmSync(workspace, { recursive: true, force: true });
          }
        });
      });
    }
  });
}
