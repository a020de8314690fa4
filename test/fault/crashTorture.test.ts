import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StepRecord } from '../../src/runtime/store/checkpointStore';
import { startBookingApi, type BookingApi, type Confirmation } from '../support/bookingApi';
import {
  describeOutcome,
  keelUntil,
  listRuns,
  printedRunId,
  printedSteps,
  showRun,
  type KeelOutcome,
  type KillPlan,
  type RunSnapshot,
} from '../support/keelCli';
import { REPO_ROOT, testEnv } from '../support/processes';
import { useTempDirs } from '../support/tempDir';
import { seededRandom } from '../support/seededRandom';

/**
 * The crash torture: a side-effecting agent books seats through a booking API that runs in its own
 * process, while this test SIGKILLs the Keel process running it at random points (and the ones
 * resuming it, and the ones deciding its unknown outcomes), then resumes each run until it ends.
 * Four runs go at once against one database, so writers also contend for it.
 */

const AGENT = join(REPO_ROOT, 'test', 'fault', 'fixtures', 'booking.agent.ts');
const RUNS = Number(process.env['KEEL_TORTURE_RUNS'] ?? 200);
const CONCURRENCY = 4;
const SEED = Number(process.env['KEEL_TORTURE_SEED'] ?? Date.now() % 1_000_000);
/** The steps of a run that nothing interrupts: 4 model calls, 2 fares, 1 passenger check, 3 bookings. */
const STEPS = 10;
const BOOKINGS_PER_RUN = 3;
/** A run that needs more keel processes than this is not converging. */
const MAX_PROCESSES_PER_RUN = 40;
const HEADER = /^booking run_[0-9a-z]+ · /m;
const EFFECT_OF: Readonly<Record<string, string>> = { fare: 'idempotent', check_passenger: 'none', book: 'unsafe' };


type Phase = 'before the run existed' | 'model step' | 'idempotent tool' | 'none tool' | 'unsafe tool' | 'between steps or after the end';
const PHASES: readonly Phase[] = ['before the run existed', 'model step', 'idempotent tool', 'none tool', 'unsafe tool', 'between steps or after the end'];

interface Counts {
  runs: number;
  kills: number;
  killsByPhase: Map<Phase, number>;
  starts: number;
  resumes: number;
  resolves: number;
  decisions: { retry: number; done: number };
  finishedBeforeKill: number;
}

/** Which step the killed process was in: the step it had started (or restarted) and not ended. */
function phaseOf(snapshot: Observed | undefined, outcome: KeelOutcome): Phase {
  if (!snapshot) return 'before the run existed';
  const inFlight = snapshot.steps.find((step) => step.status === 'in_progress' && step.startedAt >= outcome.spawnedAt);
  if (!inFlight) return 'between steps or after the end';
  if (inFlight.kind === 'model') return 'model step';
  const effect = EFFECT_OF[inFlight.name];
  return effect === 'idempotent' ? 'idempotent tool' : effect === 'none' ? 'none tool' : 'unsafe tool';
}

/** What a later snapshot must still say about a step that had ended. */
function endedFacts(step: StepRecord): unknown {
  const { seq, kind, name, status, input, output, error, idempotencyKey, endedAt } = step;
  return { seq, kind, name, status, input, output, error, idempotencyKey, endedAt };
}

/** A run as `keel show --json` prints it, or as `--json` prints it when a command ends (without effects, and with pending approvals only). */
type Observed = Omit<RunSnapshot, 'effects'> & { readonly effects?: RunSnapshot['effects'] };

/** Zero lost completed steps: every step that had ended is still there, unchanged; decisions stand. */
function assertNothingLost(before: Observed, after: Observed, context: string): void {
  for (const step of before.steps) {
    if (step.status === 'in_progress') continue;
    const later = after.steps.find((candidate) => candidate.seq === step.seq);
    assert.ok(later, `${context}: step ${step.seq} (${step.status}) disappeared`);
    assert.deepEqual(endedFacts(later), endedFacts(step), `${context}: step ${step.seq} changed after it had ended`);
  }
  for (const approval of before.approvals) {
    if (approval.status !== 'decided') continue;
    const later = after.approvals.find((candidate) => candidate.id === approval.id);
    // `--json` output lists only pending approvals; `keel show` lists them all.
    if (later || after.effects !== undefined) {
      assert.deepEqual(later?.decision, approval.decision, `${context}: the decision on ${approval.id} changed`);
    }
  }
  assert.ok(after.run.stepCount >= before.run.stepCount, `${context}: the run's step count went down`);
}

/** Every step a killed process printed as finished had been committed as such. */
function assertPrintedStepsRecorded(outcome: KeelOutcome, snapshot: Observed | undefined, context: string): void {
  for (const printed of printedSteps(outcome.stdout)) {
    const step = snapshot?.steps.find((candidate) => candidate.seq === printed.seq);
    assert.ok(
      step && step.kind === printed.kind && step.status !== 'in_progress',
      `${context}: step ${printed.seq} was printed as finished but is ${step ? step.status : 'not recorded'}\n${outcome.stdout}`,
    );
  }
}

function parseStepValue(step: StepRecord): unknown {
  return (step.output as { value?: unknown } | null)?.value;
}

describe('crash torture (SIGKILL at random points, resume until the end)', function () {
  this.timeout(15 * 60_000);
  const tempDir = useTempDirs();
  let api: BookingApi;

  before(async () => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
    api = await startBookingApi();
  });

  after(async () => {
    await api.close();
  });

  it(`${RUNS} runs against a separate booking API: no double charge, no lost step, every run completes`, async () => {
    const started = Date.now();
    const random = seededRandom(SEED);
    const dir = tempDir('keel-torture-');
    const db = join(dir, 'keel.db');
    // Node's compile cache spares each of the thousand keel processes a third of its start-up.
    const env = testEnv({ BOOKING_API_URL: api.url, NODE_COMPILE_CACHE: join(dir, 'node-compile-cache') });
    const options = { cwd: dir, env };
    const counts: Counts = {
      runs: 0,
      kills: 0,
      killsByPhase: new Map(PHASES.map((phase) => [phase, 0])),
      starts: 0,
      resumes: 0,
      resolves: 0,
      decisions: { retry: 0, done: 0 },
      finishedBeforeKill: 0,
    };
    /** How long a run takes from its creation to its end when nothing stops it: the span kills should spread over. */
    let typicalRunMs = 200;

    const uniform = (max: number) => Math.floor(random() * max);
    /** `keel run`: a tenth before the run can exist, most across its steps (some after it ends), a tenth not at all. */
    const runPlan = (): KillPlan | undefined => {
      const draw = random();
      if (draw < 0.1) return { delayMs: uniform(250) };
      if (draw < 0.9) return { after: HEADER, delayMs: uniform(Math.ceil(typicalRunMs * 1.2)) };
      return undefined;
    };
    /** `keel resume`: killed two times in five, during start-up and replay or across the remaining steps. */
    const resumePlan = (): KillPlan | undefined => {
      const draw = random();
      if (draw < 0.15) return { delayMs: uniform(300) };
      if (draw < 0.4) return { after: HEADER, delayMs: uniform(Math.ceil(typicalRunMs)) };
      return undefined;
    };
    /** `keel resolve`: killed three times in ten, before or after its decision is recorded. */
    const resolvePlan = (): KillPlan | undefined => (random() < 0.3 ? { delayMs: uniform(400) } : undefined);

    /**
     * Runs a keel command, SIGKILLing it as `plan` says. A command that is not to be killed prints
     * its outcome as JSON (`--json`), which spares a `keel show` afterwards.
     */
    async function keel(args: readonly string[], plan: KillPlan | undefined): Promise<KeelOutcome> {
      const outcome = await keelUntil([...args, ...(plan ? [] : ['--json']), '--db', db], plan, { ...options, timeoutMs: 60_000 });
      if (outcome.killed) counts.kills += 1;
      else if (plan) counts.finishedBeforeKill += 1;
      if (args[0] === 'run' && !plan && outcome.code === 0) {
        const { run } = JSON.parse(outcome.stdout) as RunSnapshot;
        const took = (run.endedAt ?? run.createdAt) - run.createdAt;
        typicalRunMs = Math.max(50, Math.round(0.8 * typicalRunMs + 0.2 * took));
      }
      return outcome;
    }

    async function findRun(input: string): Promise<string | undefined> {
      return (await listRuns(db, options)).find((run) => run.input === input)?.id;
    }

    /** Drives one run from `keel run` to `completed`, checking every snapshot against the one before. */
    async function torture(index: number): Promise<void> {
      const input = `trip-${String(index).padStart(4, '0')}`;
      const preferDone = index % 2 === 1;
      let processes = 0;
      let runId: string | undefined;
      let snapshot: Observed | undefined;

      const observe = async (outcome: KeelOutcome, planned: boolean, context: string): Promise<Observed> => {
        processes += 1;
        assert.ok(processes <= MAX_PROCESSES_PER_RUN, `${input}: still not completed after ${processes} keel processes`);
        const next: Observed = planned ? await showRun(runId ?? '', db, options) : (JSON.parse(outcome.stdout) as Observed);
        if (outcome.killed) {
          const phase = phaseOf(next, outcome);
          counts.killsByPhase.set(phase, (counts.killsByPhase.get(phase) ?? 0) + 1);
          assertPrintedStepsRecorded(outcome, next, `${input} ${context}`);
        }
        if (snapshot) assertNothingLost(snapshot, next, `${input} ${context}`);
        snapshot = next;
        return next;
      };

      while (runId === undefined) {
        counts.starts += 1;
        const plan = runPlan();
        const outcome = await keel(['run', AGENT, '--input', input], plan);
        if (!outcome.killed) assert.equal(outcome.code, 0, `${input}: keel run\n${describeOutcome(outcome)}`);
        runId = plan
          ? (printedRunId(outcome.stdout, 'booking') ?? (await findRun(input)))
          : (JSON.parse(outcome.stdout) as RunSnapshot).run.id;
        if (runId === undefined) {
          processes += 1;
          counts.killsByPhase.set('before the run existed', (counts.killsByPhase.get('before the run existed') ?? 0) + 1);
          continue;
        }
        await observe(outcome, plan !== undefined, 'after keel run');
      }

      for (let current = snapshot; current?.run.state !== 'completed'; ) {
        assert.ok(current, `${input}: no snapshot`);
        assert.ok(
          current.run.state === 'interrupted' || current.run.state === 'waiting_approval',
          `${input}: the run is ${current.run.state} (${current.run.error ?? ''})`,
        );
        const pending = current.approvals.find((approval) => approval.status === 'pending');
        let outcome: KeelOutcome;
        let context: string;
        let plan: KillPlan | undefined;
        if (pending) {
          assert.equal(pending.kind, 'unknown_outcome', `${input}: approval ${pending.id}`);
          const key = current.steps.find((step) => step.seq === pending.seq)?.idempotencyKey;
          assert.ok(key, `${input}: approval ${pending.id} is for step ${pending.seq}, which has no idempotency key`);
          const charged: Confirmation | undefined = preferDone ? await api.booking(key) : undefined;
          counts.resolves += 1;
          const decision = charged ? ['--done', JSON.stringify(charged)] : ['--retry'];
          plan = resolvePlan();
          outcome = await keel(['resolve', pending.id, ...decision], plan);
          context = `after keel resolve ${pending.id} ${decision.join(' ')}`;
        } else {
          counts.resumes += 1;
          plan = resumePlan();
          outcome = await keel(['resume', runId], plan);
          context = 'after keel resume';
        }
        if (!outcome.killed) {
          assert.ok(outcome.code === 0 || outcome.code === 3, `${input} ${context}: ${describeOutcome(outcome)}`);
        }
        current = await observe(outcome, plan !== undefined, context);
        if (!outcome.killed) {
          assert.equal(current.run.state, outcome.code === 0 ? 'completed' : 'waiting_approval', `${input} ${context}`);
        }
      }
      const final = await showRun(runId, db, options);
      if (snapshot) assertNothingLost(snapshot, final, `${input} at the end`);
      await checkCompletedRun(input, runId, final);
      counts.runs += 1;
    }

    /** The run's journal, effect ledger and the booking API agree: one charge per completed booking. */
    async function checkCompletedRun(input: string, runId: string, final: RunSnapshot): Promise<void> {
      const { run, steps, effects, approvals } = final;
      assert.equal(run.state, 'completed');
      assert.deepEqual(
        steps.map((step) => [step.seq, step.status]),
        Array.from({ length: STEPS }, (_, i) => [i + 1, 'completed']),
        `${input}: every step completed`,
      );
      const books = steps.filter((step) => step.name === 'book');
      assert.equal(books.length, BOOKINGS_PER_RUN);
      const ledger = await api.ledger(runId);

      // Zero double charges: the API charged exactly the keys of the completed book steps, once each.
      assert.deepEqual(
        ledger.bookings.map((booking) => booking.key).sort(),
        books.map((step) => step.idempotencyKey).sort(),
        `${input}: the API charged exactly the bookings the journal completed`,
      );
      assert.equal(new Set(ledger.bookings.map((booking) => `${booking.passenger}/${booking.flightId}`)).size, BOOKINGS_PER_RUN);
      for (const step of books) {
        const booking = ledger.bookings.find((candidate) => candidate.key === step.idempotencyKey);
        assert.deepEqual(
          parseStepValue(step),
          booking && { confirmation: booking.confirmation, flightId: booking.flightId, charged: booking.charged },
          `${input}: step ${step.seq} holds the confirmation the API charged under its key`,
        );
      }
      assert.equal(run.result, `Booked ${books.map((step) => (parseStepValue(step) as Confirmation).confirmation).join(', ')}.`);

      // Tools were called only for steps of the journal, and never again once their step had ended:
      // each attempt the journal counts sent at most one request.
      const toolSteps = new Map(steps.filter((step) => step.kind === 'tool').map((step) => [step.idempotencyKey, step]));
      for (const request of ledger.requests) {
        assert.ok(toolSteps.has(request.key), `${input}: the API got a request under ${request.key}, which no step has`);
        assert.notEqual(request.outcome, 'conflict', `${input}: key ${request.key} was reused with other arguments`);
      }
      for (const [key, step] of toolSteps) {
        const sent = ledger.requests.filter((request) => request.key === key).length;
        assert.ok(sent <= step.attempts, `${input}: ${sent} requests under ${key ?? ''}, but the journal counts ${step.attempts} attempts`);
      }

      // The effect ledger agrees with the journal.
      for (const effect of effects) {
        const step = steps.find((candidate) => candidate.seq === effect.seq);
        assert.equal(effect.status, 'completed', `${input}: effect ${effect.key}`);
        assert.equal(effect.key, step?.idempotencyKey);
        assert.deepEqual((effect.result as { value?: unknown } | null)?.value, step && parseStepValue(step));
      }
      assert.deepEqual(
        effects.map((effect) => effect.tool).sort(),
        ['book', 'book', 'book', 'fare', 'fare'],
        `${input}: every idempotent and unsafe call is in the effect ledger`,
      );
      for (const approval of approvals) {
        assert.equal(approval.status, 'decided', `${input}: approval ${approval.id} is still pending`);
        if (approval.decision?.action === 'done') counts.decisions.done += 1;
        else if (approval.decision?.action === 'retry') counts.decisions.retry += 1;
        else assert.fail(`${input}: approval ${approval.id} was decided ${JSON.stringify(approval.decision)}`);
      }
    }

    let next = 0;
    const worker = async () => {
      while (next < RUNS) await torture(next++);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const totals = await api.totals();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const phases = PHASES.map((phase) => `${phase} ${counts.killsByPhase.get(phase) ?? 0}`).join(', ');
    console.log(
      `      crash torture: ${counts.runs} runs, ${counts.kills} kills (${phases}), ` +
        `${counts.resumes} resumes, ${counts.decisions.retry + counts.decisions.done} decisions ` +
        `(${counts.decisions.retry} retry, ${counts.decisions.done} done; ${counts.resolves} keel resolve), ` +
        `${totals.charges} charges, ${totals.replays} deduplicated replays, ${totals.duplicates} duplicates; ` +
        `${counts.starts} keel run, ${counts.finishedBeforeKill} finished before their kill; seed ${SEED}, ${seconds} s`,
    );

    assert.equal(counts.runs, RUNS);
    assert.equal(totals.duplicates, 0, 'no trip, passenger and flight was charged twice');
    assert.equal(totals.conflicts, 0, 'no idempotency key was reused for another booking');
    assert.equal(totals.charges, RUNS * BOOKINGS_PER_RUN, 'one charge per booking');
    for (const phase of ['model step', 'idempotent tool', 'unsafe tool'] as const) {
      assert.ok((counts.killsByPhase.get(phase) ?? 0) > 0, `some kills should land in a ${phase}`);
    }
    assert.ok(counts.decisions.retry > 0 && counts.decisions.done > 0, 'both --retry and --done were exercised');
  });
});
