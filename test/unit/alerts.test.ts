import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { alertsOf, type AlertRecord } from '../../src/runtime/alerts/outbox';
import { Host } from '../../src/runtime/host/host';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { startMailReceiver, startWebhookReceiver, type MailReceiver, type WebhookReceiver } from '../support/alertReceivers';
import { KEEL } from '../support/keelCli';
import { startOpenAIServer } from '../support/openaiServer';
import { runNode, testEnv, type Finished } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';
import { until } from '../support/until';
import { FLAGGED_AGENT } from '../support/flaggedAgent';

/**
 * Alerts on the paths users take: keel.config.ts rules, the keel command and the runtime process,
 * a real SQLite outbox, a local webhook receiver and a real local SMTP server.
 */

/** Runs out of steps without an answer: the run fails. */
const LOOPER = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const ping = defineTool({ name: 'ping', description: 'Pong.', args: z.object({ n: z.number() }), effect: 'none', run: () => 'pong' });
export default defineAgent({
  name: 'looper',
  instructions: 'Ping.',
  model: scriptedModel(({ turn }) => ({ toolCalls: [{ name: 'ping', args: { n: turn } }] })),
  tools: [ping],
  maxSteps: 3,
});
`;

/** Asks a person before every booking; the decision is due in 300 ms, then it goes to on-call. */
const ESCALATING = `import { approvals, defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const book = defineTool({
  name: 'book', description: 'Books.', args: z.object({ amount: z.number() }), effect: 'unsafe', run: ({ amount }) => 'booked ' + amount,
  approval: { rules: [approvals.always('bookings need a person')], timeoutMs: 300, onTimeout: { escalateTo: 'oncall@example.com' } },
});
export default defineAgent({
  name: 'booker', instructions: 'Book.',
  model: scriptedModel([{ toolCalls: [{ name: 'book', args: { amount: 640 } }] }, 'Booked.']),
  tools: [book],
});
`;

/** One answer from an OpenAI-compatible endpoint, allowed 50 output tokens. */
const SHORT = `import { defineAgent } from 'keel-agents';
export default defineAgent({ name: 'short', instructions: 'Answer.', model: 'openai:gpt-4o-mini', maxOutputTokens: 50 });
`;

/** Pings until its budget stops it: an OpenAI-compatible endpoint answers every call with another ping. */
const PINGER = `import { defineAgent, defineTool, z } from 'keel-agents';
const ping = defineTool({ name: 'ping', description: 'Pong.', args: z.object({ n: z.number() }), effect: 'none', run: () => 'pong' });
export default defineAgent({ name: 'pinger', instructions: 'Ping.', model: 'openai:gpt-4o-mini', tools: [ping], maxOutputTokens: 50, maxSteps: 200 });
`;

function config(body: string): string {
  return `import { defineConfig } from 'keel-agents';\nexport default defineConfig(${body});\n`;
}

async function keel(cwd: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Finished> {
  return runNode(KEEL, args, { cwd, env: testEnv(env), timeoutMs: 60_000 });
}

/** A port nothing listens on (yet). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function outbox(workspace: string): Promise<AlertRecord[]> {
  const store = openSqliteStore(join(workspace, '.keel', 'keel.db'));
  return alertsOf(store)
    .list({ limit: 100 })
    .finally(() => store.close());
}

describe('alerts', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();
  let hook: WebhookReceiver | undefined;
  let mail: MailReceiver | undefined;
  const processes: RuntimeProcess[] = [];

  afterEach(async () => {
    for (const proc of processes.splice(0)) await proc.kill();
    await hook?.close();
    await mail?.close();
    hook = undefined;
    mail = undefined;
  });

  it('keel run prints the flags, exits 5 with --fail-on-flags, and sends the flag alert as JSON and as a Slack message, one key for both', async () => {
    hook = await startWebhookReceiver();
    const workspace = tempDir();
    writeFileSync(join(workspace, 'payer.agent.ts'), FLAGGED_AGENT);
    writeFileSync(
      join(workspace, 'keel.config.ts'),
      config(`{ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}/json' }, chat: { type: 'webhook', url: '${hook.url}/slack', format: 'slack' } }, rules: [{ on: 'flag', to: ['ops', 'chat'], kinds: ['ignored_tool_error'] }] } }`),
    );
    const strict = await keel(workspace, ['run', 'payer.agent.ts', '--input', 'pay', '--fail-on-flags']);
    assert.equal(strict.code, 5, strict.stdout + strict.stderr);
    assert.match(strict.stdout, /Flags \(1\)/);
    assert.match(strict.stdout, /⚑ step 4 ignored_tool_error/);

    const received = await hook.until(2);
    const json = received.filter((request) => request.path === '/json');
    const slack = received.filter((request) => request.path === '/slack');
    assert.equal(json.length, 1, 'one alert for the flagged run');
    assert.equal(json[0]?.body['event'], 'flag');
    assert.match(String(json[0]?.body['title']), /payer\) completed with 1 flag: ignored_tool_error/);
    assert.equal(json[0]?.headers['idempotency-key'], json[0]?.body['id']);
    assert.match(String(slack[0]?.body['text']), /ignored_tool_error/);
    assert.equal((slack[0]?.body['blocks'] as unknown[]).length, 2);
    assert.deepEqual(
      new Set(slack.map((request) => request.headers['idempotency-key'])),
      new Set(json.map((request) => request.headers['idempotency-key'])),
      'both channels of an alert carry its one key',
    );
    const listed = await keel(workspace, ['alerts']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((listed.stdout.match(/ sent /g) ?? []).length, 2, listed.stdout);
  });

  it('keel alerts test sends to every channel (a webhook and email over a real SMTP server), and leaves the editor channel to an editor', async () => {
    hook = await startWebhookReceiver();
    mail = await startMailReceiver();
    const workspace = tempDir();
    writeFileSync(
      join(workspace, 'keel.config.ts'),
      config(`{ alerts: { channels: {
        ops: { type: 'webhook', url: '${hook.url}/ops' },
        oncall: { type: 'email', smtp: '${mail.url}', from: 'keel@example.com', to: ['oncall@example.com', 'lead@example.com'] },
        editor: { type: 'editor' },
      } } }`),
    );
    const sent = await keel(workspace, ['alerts', 'test']);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    assert.match(sent.stdout, /ops\s+sent/);
    assert.match(sent.stdout, /oncall\s+sent/);
    assert.match(sent.stdout, /editor\s+pending: shown when the runtime process of a VS Code window/);
    const [message] = await mail.until(1);
    assert.equal(message?.mail.subject, '[Keel] Keel test alert');
    assert.deepEqual([...(message?.envelopeTo ?? [])].sort(), ['lead@example.com', 'oncall@example.com']);
    assert.match(message?.mail.text ?? '', /test of the alert channels/);
    assert.match(message?.mail.messageId ?? '', /^<alert_[0-9a-f]{20}@keel\.alerts>$/);
    assert.equal((await hook.until(1))[0]?.body['event'], 'test');
  });

  it('a rule naming a channel that does not exist stops runs with one sentence', async () => {
    const workspace = tempDir();
    writeFileSync(join(workspace, 'looper.agent.ts'), LOOPER);
    writeFileSync(join(workspace, 'keel.config.ts'), config(`{ alerts: { channels: { ops: { type: 'editor' } }, rules: [{ on: 'run_failed', to: 'pager' }] } }`));
    const run = await keel(workspace, ['run', 'looper.agent.ts', '--input', 'go']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /alerts\.rules\.0 sends run_failed alerts to "pager", which is neither a channel of alerts\.channels nor an email address or URL \(its channels are ops\)/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('spend over a threshold per day per agent is counted from the store, across processes, once per window; a provider that returns more output than allowed raises provider_overrun', async () => {
    hook = await startWebhookReceiver();
    const model = await startOpenAIServer({ respond: () => ({ content: 'Done.', usage: { prompt_tokens: 100_000, completion_tokens: 900 } }) });
    const env = { OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'test' };
    try {
      const workspace = tempDir();
      writeFileSync(join(workspace, 'short.agent.ts'), SHORT);
      const first = await keel(workspace, ['run', 'short.agent.ts', '--input', 'hi', '--json'], env);
      const cost = (JSON.parse(first.stdout) as { run: { costUsd: number } }).run.costUsd;
      assert.ok(cost > 0, first.stdout);
      // From now on: alert when the agent has spent 1.5 runs' worth today. Each process sees only its own run.
      writeFileSync(
        join(workspace, 'keel.config.ts'),
        config(`{ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}' } }, rules: [{ on: 'spend', to: 'ops', agent: 'short', usd: ${cost * 1.5}, per: 'day' }, { on: 'provider_overrun', to: 'ops' }] } }`),
      );
      // A token budget: each call reserves its output limit, which the provider then overruns.
      await keel(workspace, ['run', 'short.agent.ts', '--input', 'hi', '--budget-tokens', '1000000'], env);
      const received = await hook.until(2);
      const spend = received.find((request) => request.body['event'] === 'spend');
      assert.match(String(spend?.body['title']), /Spend of agent short reached \$[\d.]+ this day \(threshold \$/);
      assert.ok(Math.abs((spend?.body['facts'] as { spentUsd: number }).spentUsd - 2 * cost) < 1e-9, 'both runs counted');
      const overrun = received.find((request) => request.body['event'] === 'provider_overrun');
      assert.match(String(overrun?.body['title']), /Provider overrun: openai:gpt-4o-mini returned 900 output tokens, more than the 50 it was allowed/);
      await keel(workspace, ['run', 'short.agent.ts', '--input', 'hi', '--budget-tokens', '1000000'], env);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(hook.received.length, 2, 'one spend alert per rule and day; the same model overrunning again within the dedup window is a repeat');
    } finally {
      await model.close();
    }
  });

  it('a real run that spends its token budget raises budget_warning at 80%, then budget_exceeded, each sent to a webhook once', async () => {
    hook = await startWebhookReceiver();
    const model = await startOpenAIServer({ respond: (_request, index) => ({ toolCalls: [{ name: 'ping', arguments: JSON.stringify({ n: index }) }], usage: { prompt_tokens: 480, completion_tokens: 20 } }) });
    try {
      const workspace = tempDir();
      writeFileSync(join(workspace, 'pinger.agent.ts'), PINGER);
      writeFileSync(
        join(workspace, 'keel.config.ts'),
        config(`{ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}' } }, rules: [{ on: 'budget_warning', to: 'ops' }, { on: 'budget_exceeded', to: 'ops', agent: 'pinger' }] } }`),
      );
      const run = await keel(workspace, ['run', 'pinger.agent.ts', '--input', 'go', '--budget-tokens', '5000', '--json'], { OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'test' });
      const stopped = (JSON.parse(run.stdout) as { run: { state: string; usage: { inputTokens: number; outputTokens: number } } }).run;
      assert.equal(stopped.state, 'budget_exceeded', run.stdout + run.stderr);
      const received = await hook.until(2);
      assert.deepEqual(received.map((request) => request.body['event']).sort(), ['budget_exceeded', 'budget_warning']);
      const warning = received.find((request) => request.body['event'] === 'budget_warning');
      assert.match(String(warning?.body['title']), /token/i);
      const exceeded = received.find((request) => request.body['event'] === 'budget_exceeded');
      assert.equal(exceeded?.body['runId'], (await outbox(workspace)).find((alert) => alert.event === 'budget_exceeded')?.runId);
      assert.ok(stopped.usage.inputTokens + stopped.usage.outputTokens <= 5000, 'the budget was not passed');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(hook.received.length, 2, 'each sent once');
    } finally {
      await model.close();
    }
  });

  it('a run that fails raises run_failed in the editor: the runtime process notifies the extension with the run to open', async () => {
    const workspace = tempDir();
    writeFileSync(join(workspace, 'looper.agent.ts'), LOOPER);
    writeFileSync(join(workspace, 'keel.config.ts'), config(`{ alerts: { channels: { editor: { type: 'editor' } }, rules: [{ on: 'run_failed', to: 'editor' }] } }`));
    const daemon = new RuntimeProcess(workspace);
    processes.push(daemon);
    await daemon.initialize();
    const { runId } = await daemon.request('startRun', { agentFile: join(workspace, 'looper.agent.ts'), input: 'go' });
    const shown = await until(() => daemon.notifications.find((note) => note.method === 'alert'), 'an alert notification');
    const alert = shown.params as { runId: string; title: string; event: string };
    assert.equal(alert.runId, runId);
    assert.equal(alert.event, 'run_failed');
    assert.match(alert.title, /failed/);
    const [recorded] = await until(async () => ((await outbox(workspace))[0]?.deliveries[0]?.status === 'sent' ? outbox(workspace) : undefined), 'the delivery recorded as sent');
    assert.equal(recorded?.deliveries[0]?.target, 'editor');
  });

  it('an alert raised before its process is killed is delivered once by the next process', async () => {
    const port = await closedPort();
    const workspace = tempDir();
    writeFileSync(join(workspace, 'looper.agent.ts'), LOOPER);
    writeFileSync(join(workspace, 'keel.config.ts'), config(`{ alerts: { channels: { ops: { type: 'webhook', url: 'http://127.0.0.1:${port}/hook' } }, rules: [{ on: 'run_failed', to: 'ops' }] } }`));
    const first = new RuntimeProcess(workspace, { KEEL_ALERT_POLL_MS: '200' });
    processes.push(first);
    await first.initialize();
    const { runId } = await first.request('startRun', { agentFile: join(workspace, 'looper.agent.ts'), input: 'go' });
    await first.stopped(runId, 'failed');
    // Raised, and tried against a receiver that is not there yet: pending, with its failure recorded.
    await until(async () => ((await outbox(workspace))[0]?.deliveries[0]?.lastError ? true : undefined), 'a failed first attempt');
    await first.kill();
    const [pending] = await outbox(workspace);
    assert.equal(pending?.deliveries[0]?.status, 'pending');

    hook = await startWebhookReceiver({ port });
    const second = new RuntimeProcess(workspace, { KEEL_ALERT_POLL_MS: '200' });
    processes.push(second);
    await second.initialize();
    const [received] = await hook.until(1);
    // Three more polls of the outbox: nothing more is sent.
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(hook.received.length, 1, 'delivered once');
    assert.equal(received?.body['runId'], runId);
    assert.equal(received?.headers['idempotency-key'], pending?.id);
    const [sent] = await outbox(workspace);
    assert.equal(sent?.deliveries[0]?.status, 'sent');
  });

  it('a process killed while sending leaves the delivery to the next one, with the same key: a receiver that drops repeats acts once', async () => {
    hook = await startWebhookReceiver({ answer: (_request, index) => (index === 0 ? 'hold' : { status: 200 }) });
    const workspace = tempDir();
    writeFileSync(join(workspace, 'looper.agent.ts'), LOOPER);
    writeFileSync(join(workspace, 'keel.config.ts'), config(`{ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}' } }, rules: [{ on: 'run_failed', to: 'ops' }] } }`));
    const first = new RuntimeProcess(workspace);
    processes.push(first);
    await first.initialize();
    await first.request('startRun', { agentFile: join(workspace, 'looper.agent.ts'), input: 'go' });
    await hook.until(1);
    await first.kill();

    const second = new RuntimeProcess(workspace);
    processes.push(second);
    await second.initialize();
    await hook.until(2);
    assert.equal(hook.distinctKeys().length, 1, 'the same idempotency key both times');
    const [sent] = await until(async () => ((await outbox(workspace))[0]?.deliveries[0]?.status === 'sent' ? outbox(workspace) : undefined), 'the delivery recorded as sent');
    assert.equal(sent?.deliveries[0]?.attempts, 2);
  });

  it('an approval past its deadline is escalated by email to the address escalateTo names, with the command to decide it; one waiting too long alerts the team', async () => {
    mail = await startMailReceiver();
    const workspace = tempDir();
    writeFileSync(join(workspace, 'booker.agent.ts'), ESCALATING);
    writeFileSync(
      join(workspace, 'keel.config.ts'),
      config(`{ alerts: { channels: { mail: { type: 'email', smtp: '${mail.url}', from: 'keel@example.com', to: 'team@example.com' } }, rules: [{ on: 'approval_waiting', afterMs: 100, to: 'mail' }] } }`),
    );
    const daemon = new RuntimeProcess(workspace);
    processes.push(daemon);
    await daemon.initialize();
    const { runId } = await daemon.request('startRun', { agentFile: join(workspace, 'booker.agent.ts'), input: 'book' });
    const approval = await daemon.approvalRequested(runId);
    const received = await mail.until(2);
    const waiting = received.find((candidate) => candidate.envelopeTo.includes('team@example.com'));
    assert.match(waiting?.mail.subject ?? '', new RegExp(`Approval ${approval.id} has waited .* for a decision`));
    const message = received.find((candidate) => candidate !== waiting);
    assert.deepEqual(message?.envelopeTo, ['oncall@example.com']);
    assert.match(message?.mail.subject ?? '', /Escalated to oncall@example\.com: approval .* \(book\) passed its deadline undecided/);
    assert.ok(message?.mail.text?.includes(`npx keel approve ${approval.id}`), message?.mail.text);
  });

  it('in the host: an open circuit alerts; two runs warning on one pool within the dedup window are one alert, the second a repeat', async () => {
    hook = await startWebhookReceiver();
    const workspace = tempDir();
    writeFileSync(
      join(workspace, 'keel.config.ts'),
      config(`{ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}' } }, rules: [{ on: 'circuit_open', to: 'ops' }, { on: 'budget_warning', to: 'ops' }], dedupWindowMs: 600000 } }`),
    );
    const host = await Host.open({ cwd: workspace });
    try {
      const breaker = host.breakers.for('model openai:gpt-4o');
      for (let call = 0; call < 10; call++) breaker.failed();
      for (const runId of ['run_a', 'run_b']) {
        host.alerts.observe({ type: 'budget_warning', runId, budgetId: 'pool:team', dimension: 'usd', spent: 8.5, limit: 10 });
      }
      await host.alerts.flush(5_000);
      const alerts = await alertsOf(host.store).list();
      const circuit = alerts.filter((alert) => alert.event === 'circuit_open');
      assert.equal(circuit.length, 1);
      assert.match(circuit[0]?.title ?? '', /Circuit open: model openai:gpt-4o/);
      assert.match(circuit[0]?.body ?? '', /after 10 of 10 calls failed within 60 s/);
      const warnings = alerts.filter((alert) => alert.event === 'budget_warning');
      assert.equal(warnings.length, 1, 'two runs warning on one pool are one alert');
      assert.equal(warnings[0]?.repeats, 1);
      assert.match(warnings[0]?.title ?? '', /pool:team has used 85% of its usd limit/);
      assert.equal(hook.received.length, 2);
    } finally {
      await host.close();
    }
  });

  it('retries a webhook that answers 503 after its Retry-After, and fails at once on a 404', async () => {
    const times: number[] = [];
    let flakyCalls = 0;
    hook = await startWebhookReceiver({
      answer: (request) => {
        times.push(Date.now());
        if (request.path === '/gone') return { status: 404 };
        flakyCalls += 1;
        return flakyCalls <= 2 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 };
      },
    });
    const workspace = tempDir();
    writeFileSync(
      join(workspace, 'keel.config.ts'),
      config(`{ alerts: { channels: { flaky: { type: 'webhook', url: '${hook.url}/flaky' }, gone: { type: 'webhook', url: '${hook.url}/gone' } } } }`),
    );
    const host = await Host.open({ cwd: workspace });
    try {
      const alert = await host.alerts.test(Date.now());
      assert.ok(alert);
      await host.alerts.dispatcher.drain(20_000);
      const done = await alertsOf(host.store).getAlert(alert.id);
      const flaky = done?.deliveries.find((delivery) => delivery.target === 'flaky');
      const gone = done?.deliveries.find((delivery) => delivery.target === 'gone');
      assert.equal(flaky?.status, 'sent');
      assert.equal(flaky?.attempts, 3);
      assert.equal(gone?.status, 'failed');
      assert.equal(gone?.attempts, 1);
      assert.match(gone?.lastError ?? '', /HTTP 404/);
      const flakyTimes = hook.received.map((request, index) => ({ request, at: times[index] ?? 0 })).filter(({ request }) => request.path === '/flaky');
      for (let index = 1; index < flakyTimes.length; index++) {
        assert.ok((flakyTimes[index]?.at ?? 0) - (flakyTimes[index - 1]?.at ?? 0) >= 950, 'waited at least as long as Retry-After');
      }
    } finally {
      await host.close();
    }
  });

  it('an SMTP 4xx reply is tried again and a 5xx reply fails the delivery', async () => {
    mail = await startMailReceiver({ reject: (index) => (index === 0 ? { code: 451, message: 'try later' } : index === 2 ? { code: 550, message: 'no such mailbox' } : undefined) });
    const workspace = tempDir();
    writeFileSync(join(workspace, 'keel.config.ts'), config(`{ alerts: { channels: { mail: { type: 'email', smtp: '${mail.url}', from: 'keel@example.com', to: 'a@example.com' } } } }`));
    const host = await Host.open({ cwd: workspace });
    try {
      const retried = await host.alerts.test(Date.now());
      await host.alerts.dispatcher.drain(10_000);
      const refused = await host.alerts.test(Date.now() + 1);
      await host.alerts.dispatcher.drain(10_000);
      const outboxNow = alertsOf(host.store);
      const first = (await outboxNow.getAlert(retried?.id ?? ''))?.deliveries[0];
      const second = (await outboxNow.getAlert(refused?.id ?? ''))?.deliveries[0];
      assert.equal(first?.status, 'sent');
      assert.equal(first?.attempts, 2);
      assert.equal(second?.status, 'failed');
      assert.match(second?.lastError ?? '', /550/);
      assert.equal(mail.received.length, 1);
    } finally {
      await host.close();
    }
  });
});
