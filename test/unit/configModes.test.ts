import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { alertsOf } from '../../src/runtime/alerts/outbox';
import { reviewsOf } from '../../src/runtime/review/reviewStore';
import type { ApprovalRecord, ReservationRecord, RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { writeProbeAgent, writeProject } from '../support/configProject';
import { describeOutcome, KEEL } from '../support/keelCli';
import { startOpenAIServer, type OpenAIServer, type RecordedRequest } from '../support/openaiServer';
import { decodeExport, startOtlpReceiver, type DecodedSpan, type OtlpReceiver } from '../support/otlpReceiver';
import { startWebhookReceiver, type WebhookReceiver } from '../support/alertReceivers';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';
import { until } from '../support/until';

/**
 * Every configuration key takes effect in every mode a run is made in: `keel run` (and `keel
 * approve`, which continues it), the runtime process the editor starts runs in, golden cases from
 * `keel record`/`keel test` and from the Test Explorer (the runtime process), and the debugger's
 * live runs. One project per mode, its keel.config.ts setting every key at once; the probe agent
 * calls a tool that says where it ran, then a tool that needs approval. What each key changes is
 * then read where a user would see it: the database the run is in, the model the server was asked
 * for, the run's cost and budgets, the approval's deadline, the review queue, the alert outbox and
 * the OTLP collector. (The engine keys are Restate's: the conformance stage runs through them.)
 */

const SECRET = /ZQX-4417/;
const PRICE = { inputPerMTok: 1000, outputPerMTok: 2000 };
const TIMEOUT_MS = 3_600_000;

/** Everything a mode left behind that shows a key at work. */
interface Evidence {
  readonly database: string;
  readonly run: RunRecord;
  readonly steps: readonly StepRecord[];
  readonly approvals: readonly ApprovalRecord[];
  readonly reservations: readonly ReservationRecord[];
  readonly reviewedTools: readonly string[];
  readonly alerts: readonly string[];
  /** Model requests the server got while the mode ran. */
  readonly requests: readonly RecordedRequest[];
  /** Spans of the run's trace that reached the OTLP collector. */
  readonly exported: readonly DecodedSpan[];
}

type Check = (evidence: Evidence, root: string) => string | undefined;

const differs = (what: string, actual: unknown, expected: unknown): string | undefined => {
  try {
    assert.deepEqual(actual, expected);
    return undefined;
  } catch {
    return `${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`;
  }
};

/** What each key, as the projects' keel.config.ts sets it, must change. */
const CHECKS: Readonly<Record<string, Check>> = {
  database: (e, root) => differs('the run database', e.database, join(root, 'runs', 'modes.db')),
  'golden.database': (e, root) => differs('the golden database', e.database, join(root, 'golden', 'modes.db')),
  model: (e) => differs('models asked', [...new Set(e.requests.map((request) => request.body.model))], ['matrix-model']),
  prices: (e) =>
    differs(
      'the run cost at the configured price',
      Math.round(e.run.costUsd * 1e9),
      Math.round(((e.run.usage.inputTokens * PRICE.inputPerMTok + e.run.usage.outputTokens * PRICE.outputPerMTok) / 1e6) * 1e9),
    ) ?? (e.run.costUsd > 0 ? undefined : 'the run cost nothing'),
  'budget.run': (e) => differs('the run budget', e.run.budget, { usd: 50, steps: 40 }),
  'budget.pools': (e) => (e.reservations.some((reservation) => reservation.budgetIds.includes('pool:team')) ? undefined : 'no reservation on the pool "team"'),
  'budget.dailyUsd': (e) => (e.reservations.some((reservation) => reservation.budgetIds.some((id) => id.startsWith('pool:daily:'))) ? undefined : 'no reservation on the daily pool'),
  'sandbox.default+tier': (e) =>
    differs('where the unmarked probe tool ran', e.steps.filter((step) => step.name === 'probe').map((step) => /ran in (\S+);/.exec(JSON.stringify(step.output))?.[1]), ['toolProcess.js']),
  'approvals.timeoutMs+onTimeout': (e) =>
    differs(
      'the approval deadline and escalation',
      e.approvals.map((approval) => ({ wait: (approval.deadline ?? 0) - approval.requestedAt, onExpiry: approval.onExpiry, escalateTo: approval.escalateTo })),
      [{ wait: TIMEOUT_MS, onExpiry: 'escalate', escalateTo: 'lead' }],
    ),
  'review.sample': (e) => differs('tools queued for review', e.reviewedTools, ['probe']),
  alerts: (e) => (e.alerts.includes('spend') ? undefined : `no spend alert in the outbox (it holds ${JSON.stringify(e.alerts)})`),
  'trace.otlp.endpoint': (e) => (e.exported.length > 0 ? undefined : 'no span of the run reached the collector'),
  'trace.captureContent': (e) => (e.exported.some((span) => JSON.stringify(span.attributes).includes('ran in toolProcess.js')) ? undefined : 'the exported spans carry no content'),
  'trace.redact': (e) => (e.exported.some((span) => SECRET.test(JSON.stringify(span.attributes))) ? 'the exported spans carry the secret' : undefined),
};

type Key = keyof typeof CHECKS;
const RUN_KEYS: readonly Key[] = Object.keys(CHECKS).filter((key) => key !== 'golden.database');
/** Golden case runs are tests: kept apart, in the golden database, they export no trace, raise no alert and queue no review. */
const GOLDEN_KEYS: readonly Key[] = ['golden.database', 'prices', 'budget.run', 'budget.pools', 'budget.dailyUsd', 'sandbox.default+tier', 'approvals.timeoutMs+onTimeout'];

/** The model: the probe tool, then `book` for $500 (which needs approval), then the answer. */
function modelReply(request: RecordedRequest) {
  const results = request.body.messages.filter((message) => message.role === 'tool').length;
  if (results === 0) return { toolCalls: [{ name: 'probe', arguments: '{}' }] };
  if (results === 1) return { toolCalls: [{ name: 'book', arguments: '{"amount":500}' }] };
  return { content: 'Probed and booked.' };
}

describe('configuration in every mode: each key of keel.config.ts takes effect wherever a run is made', function () {
  this.timeout(240_000);
  const tempDir = useTempDirs();
  let model: OpenAIServer;
  let collector: OtlpReceiver;
  let hooks: WebhookReceiver;

  before(async () => {
    model = await startOpenAIServer({ respond: modelReply, models: ['matrix-model'] });
    collector = await startOtlpReceiver();
    hooks = await startWebhookReceiver();
  });

  after(async () => {
    await Promise.all([model.close(), collector.close(), hooks.close()]);
  });

  const env = (): Record<string, string> => ({ OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'test-key' });

  function keel(root: string, args: readonly string[]): Promise<Finished> {
    const base = testEnv(env());
    for (const name of Object.keys(base)) if (name.startsWith('OTEL_') || name.startsWith('KEEL_')) delete base[name];
    return runNode(KEEL, args, { cwd: root, env: base, timeoutMs: 120_000 });
  }

  /** A project with every key set in its keel.config.ts, the probe agent and its golden file. */
  function project(): { root: string; agent: string } {
    const root = tempDir('keel-modes-');
    writeProject(root, {
      database: 'runs/modes.db',
      model: 'openai:matrix-model',
      prices: 'prices.json',
      budget: { run: { usd: 50, steps: 40 }, pools: [{ id: 'team', limits: { usd: 100 } }], dailyUsd: 200 },
      sandbox: { default: 'all', tier: 'process' },
      trace: { captureContent: true, redact: ['ZQX-\\d+'], otlp: { endpoint: collector.url } },
      approvals: { timeoutMs: TIMEOUT_MS, onTimeout: { escalateTo: 'lead' } },
      alerts: { channels: { lead: { type: 'webhook', url: hooks.url } }, rules: [{ on: 'spend', usd: 0.000001, per: 'day', agent: 'probe', to: 'lead' }] },
      review: { sample: [{ tool: 'probe', rate: 1 }] },
      golden: { database: 'golden/modes.db' },
    });
    writeFileSync(join(root, 'prices.json'), JSON.stringify({ 'matrix-model': PRICE }));
    // Keel makes no folders for a database it is named.
    for (const folder of ['runs', 'golden']) mkdirSync(join(root, folder));
    writeFileSync(
      join(root, 'probe.golden.yaml'),
      'version: 1\nagent: ./probe.agent.ts\ncases:\n  - name: probes and books\n    tags: [happy]\n    input: go\n    approvals: approve\n    expect:\n      tools: { called: [probe, book] }\n',
    );
    return { root, agent: writeProbeAgent(root) };
  }

  /** What the mode left in `database` for its latest run, and what the servers got since `since` requests. */
  async function evidence(database: string, since: number): Promise<Evidence> {
    assert.ok(existsSync(database), `no database at ${database}`);
    const store = openSqliteStore(database);
    try {
      const [run] = await store.listRuns({ limit: 1 });
      assert.ok(run, `no run in ${database}`);
      const exported = collector.requests
        .flatMap((request) => decodeExport(request).spans)
        .filter((span) => span.traceId === run.traceId);
      return {
        database,
        run,
        steps: await store.getSteps(run.id),
        approvals: await store.listApprovals({ runId: run.id }),
        reservations: await store.listReservations({ runId: run.id }),
        reviewedTools: (await reviewsOf(store).list()).filter((review) => review.runId === run.id).map((review) => review.tool),
        alerts: (await alertsOf(store).list()).map((alert) => alert.event),
        requests: model.requests.slice(since),
        exported,
      };
    } finally {
      await store.close();
    }
  }

  function expectKeys(keys: readonly Key[], found: Evidence, root: string): void {
    const wrong = keys.flatMap((key) => {
      const problem = CHECKS[key]?.(found, root);
      return problem ? [`${key}: ${problem}`] : [];
    });
    assert.deepEqual(wrong, []);
  }

  it('keel run, then keel approve, which continues the run', async () => {
    const { root, agent } = project();
    const since = model.requests.length;
    const run = await keel(root, ['run', agent, '--input', 'go']);
    const paused = await evidence(join(root, 'runs', 'modes.db'), since);
    assert.equal(paused.run.state, 'waiting_approval', describeOutcome(run));
    const approved = await keel(root, ['approve', paused.approvals[0]?.id ?? 'none']);
    assert.equal(approved.code, 0, describeOutcome(approved));
    const found = await evidence(join(root, 'runs', 'modes.db'), since);
    assert.equal(found.run.state, 'completed', found.run.error ?? '');
    expectKeys(RUN_KEYS, found, root);
  });

  it('the runtime process, as the editor starts and continues runs', async () => {
    const { root, agent } = project();
    const since = model.requests.length;
    const proc = new RuntimeProcess(root, env());
    try {
      await proc.request('initialize', { workspaceRoot: root });
      const { runId } = await proc.request('startRun', { agentFile: agent, input: 'go' });
      const approval = await proc.approvalRequested(runId);
      await proc.request('decide', { approvalId: approval.id, request: { action: 'approve', argsHash: approval.argsHash } });
      const done = await proc.stopped(runId, 'completed', 60_000);
      await until(() => (collector.requests.some((request) => decodeExport(request).spans.some((span) => span.traceId === done.traceId)) ? true : undefined), 'the run exported');
      expectKeys(RUN_KEYS, await evidence(join(root, 'runs', 'modes.db'), since), root);
    } finally {
      await proc.kill();
    }
  });

  it('golden cases recorded by keel record and replayed by keel test', async () => {
    const { root } = project();
    const since = model.requests.length;
    const recorded = await keel(root, ['record', 'probe.golden.yaml']);
    assert.equal(recorded.code, 0, describeOutcome(recorded));
    const tested = await keel(root, ['test', 'probe.golden.yaml']);
    assert.equal(tested.code, 0, describeOutcome(tested));
    const found = await evidence(join(root, 'golden', 'modes.db'), since);
    expectKeys([...GOLDEN_KEYS, 'model'], found, root);
    assert.equal(existsSync(join(root, 'runs', 'modes.db')), false, 'golden runs stay out of the run database');
  });

  it('golden cases from the Test Explorer, in the runtime process', async () => {
    const { root } = project();
    assert.equal((await keel(root, ['record', 'probe.golden.yaml'])).code, 0);
    const proc = new RuntimeProcess(root, env());
    try {
      await proc.request('initialize', { workspaceRoot: root });
      const report = await proc.request('runGolden', { token: 'modes', file: join(root, 'probe.golden.yaml'), mode: 'replay' });
      assert.deepEqual(report.cases.map((result) => result.status), ['passed'], JSON.stringify(report));
      expectKeys(GOLDEN_KEYS, await evidence(join(root, 'golden', 'modes.db'), model.requests.length), root);
    } finally {
      await proc.kill();
    }
  });

  it("the debugger's live run, up to its approval (which the editor's runtime process then continues)", async () => {
    const { root, agent } = project();
    const since = model.requests.length;
    const client = new DebugClient(process.execPath, join(REPO_ROOT, 'dist', 'debugAdapter.js'), 'keel', { cwd: root, env: testEnv(env()) }, true);
    client.defaultTimeout = 60_000;
    await client.start();
    try {
      await Promise.all([client.waitForEvent('initialized').then(() => client.configurationDoneRequest()), client.launch({ agent, input: 'go', pauseBeforeTools: false })]);
      const database = join(root, 'runs', 'modes.db');
      await until(async () => ((await evidence(database, since)).reviewedTools.length > 0 ? true : undefined), 'the paused run sampled for review', 60_000);
      // The trace is exported when the run ends, after the decision: what depends on its end is the runtime process's (above).
      const endKeys = new Set<Key>(['trace.otlp.endpoint', 'trace.captureContent', 'trace.redact']);
      expectKeys(
        RUN_KEYS.filter((key) => !endKeys.has(key)),
        await evidence(database, since),
        root,
      );
    } finally {
      await client.stop().catch(() => undefined);
    }
  });
});
