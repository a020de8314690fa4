import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { RpcError } from '../../src/protocol/jsonRpc';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { bookingAgent, bookings } from '../support/approvalAgent';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

/** A keel.config.ts and an agent file that each leave a mark when they are loaded (run). */
function markingWorkspace(dir: string, config: string): { configMark: string; agentMark: string; agentFile: string } {
  const configMark = join(dir, 'config-ran');
  const agentMark = join(dir, 'agent-ran');
  writeFileSync(join(dir, 'package.json'), '{ "name": "cloned-project" }\n');
  writeFileSync(
    join(dir, 'keel.config.ts'),
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(configMark)}, 'ran');\nexport default ${config};\n`,
  );
  const agentFile = join(dir, 'marking.agent.ts');
  writeFileSync(
    agentFile,
    `import { writeFileSync } from 'node:fs';
import { defineAgent, scriptedModel } from 'keel-agents';
writeFileSync(${JSON.stringify(agentMark)}, 'ran');
export default defineAgent({ name: 'marking', instructions: 'Answer.', model: scriptedModel(['Done.']) });
`,
  );
  return { configMark, agentMark, agentFile };
}

/** A TCP server that only counts who connects: where a PostgreSQL URL in a cloned project points. */
async function countingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { server, port: address.port, connections: () => connections };
}

async function refusal(request: Promise<unknown>): Promise<RpcError> {
  const error = await request.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof RpcError, `expected a refusal, got ${String(error)}`);
  return error;
}

describe('the runtime process in a folder the person has not trusted, and servers a workspace names', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  afterEach(async () => {
    for (const proc of processes.splice(0)) await proc.kill();
  });

  function start(dir: string): RuntimeProcess {
    const proc = new RuntimeProcess(dir);
    processes.push(proc);
    return proc;
  }

  it('in Restricted Mode loads no keel.config.ts and no agent: it shows the runs and refuses to run, resume or decide, recording nothing', async () => {
    const dir = tempDir('keel-untrusted-');
    const { configMark, agentMark, agentFile } = markingWorkspace(dir, '{ sandbox: { default: "marked" } }');
    // A run recorded earlier (by the CLI, say), paused for a decision.
    const trusted = start(dir);
    await trusted.request('initialize', { workspaceRoot: dir });
    const { runId } = await trusted.request('startRun', { agentFile: bookingAgent(dir), input: 'Book it' });
    await trusted.stopped(runId, 'waiting_approval');
    await trusted.kill();

    rmSync(configMark, { force: true });
    rmSync(agentMark, { force: true });

    const restricted = start(dir);
    const started = await restricted.request('initialize', { workspaceRoot: dir, trusted: false });
    assert.equal(started.databasePath, join(dir, '.keel', 'keel.db'));
    assert.deepEqual((await restricted.request('listRuns', {})).map((run) => run.id), [runId], 'the runs recorded there are shown');

    const startRefused = await refusal(restricted.request('startRun', { agentFile, input: 'hi' }));
    assert.match(startRefused.message, /Restricted Mode.*trust the folder/);
    await refusal(restricted.request('resumeRun', { runId }));
    const [approval] = await restricted.request('listApprovals', { runId, status: 'pending' });
    assert.ok(approval);
    await refusal(restricted.request('decide', { approvalId: approval.id, request: { action: 'approve', argsHash: approval.argsHash } }));

    assert.equal(existsSync(configMark), false, 'keel.config.ts was not run');
    assert.equal(existsSync(agentMark), false, 'no agent file was run');
    assert.deepEqual(bookings(dir), [], 'no tool ran');
    const store = openSqliteStore(join(dir, '.keel', 'keel.db'));
    try {
      assert.equal((await store.getApproval(approval.id))?.status, 'pending', 'no decision was recorded');
      assert.deepEqual((await store.listRuns()).map((run) => run.id), [runId], 'no run was started');
    } finally {
      await store.close();
    }
  });

  it('connects to a PostgreSQL server that keel.config.ts or the workspace settings name only once the person allowed it', async () => {
    const { server, port, connections } = await countingServer();
    try {
      const dir = tempDir('keel-consent-');
      const url = `postgres://keel:s3cret@127.0.0.1:${port}/runs`;
      markingWorkspace(dir, `{ database: ${JSON.stringify(url)} }`);

      const fromFile = await refusal(start(dir).request('initialize', { workspaceRoot: dir, serverConsent: { workspaceSettings: [], allowed: [] } }));
      assert.equal(fromFile.data.name, 'ServerConsentError');
      assert.match(fromFile.message, new RegExp(`keel\\.config\\.ts names the PostgreSQL database for its runs at 127\\.0\\.0\\.1:${port}`));
      assert.ok(!fromFile.message.includes('s3cret'));

      const other = tempDir('keel-consent-settings-');
      writeFileSync(join(other, 'package.json'), '{ "name": "cloned-project" }\n');
      const fromSettings = await refusal(
        start(other).request('initialize', {
          workspaceRoot: other,
          settings: { 'keel.databasePath': url },
          serverConsent: { workspaceSettings: ['keel.databasePath'], allowed: [] },
        }),
      );
      assert.match(fromSettings.message, /setting keel\.databasePath names the PostgreSQL database/);
      assert.equal(connections(), 0, 'nothing reached the server before the person allowed it');

      // Allowed: the runtime process connects (this server is no PostgreSQL, so opening fails after).
      await refusal(start(dir).request('initialize', { workspaceRoot: dir, serverConsent: { workspaceSettings: [], allowed: [`127.0.0.1:${port}`] } }));
      assert.ok(connections() > 0, 'the allowed server was reached');
    } finally {
      server.close();
    }
  });

  it('sends alerts to a webhook or an SMTP server that keel.config.ts names only once the person allowed each', async () => {
    const hook = await countingServer();
    const mail = await countingServer();
    try {
      const dir = tempDir('keel-consent-alerts-');
      const alerts = {
        channels: {
          ops: { type: 'webhook', url: `http://127.0.0.1:${hook.port}/keel` },
          team: { type: 'email', smtp: `smtp://keel@127.0.0.1:${mail.port}`, passwordEnv: 'KEEL_SMTP_PASSWORD', from: 'keel@example.com', to: 'team@example.com' },
        },
        rules: [{ on: 'run_failed', to: ['ops', 'team'] }],
      };
      markingWorkspace(dir, JSON.stringify({ alerts }));
      const initialize = (allowed: string[]) => start(dir).request('initialize', { workspaceRoot: dir, serverConsent: { workspaceSettings: [], allowed } });

      const webhook = await refusal(initialize([]));
      assert.equal(webhook.data.name, 'ServerConsentError');
      assert.match(webhook.message, new RegExp(`keel\\.config\\.ts names the webhook of its alert channel "ops" at 127\\.0\\.0\\.1:${hook.port}`));
      const smtp = await refusal(initialize([`127.0.0.1:${hook.port}`]));
      assert.match(smtp.message, new RegExp(`keel\\.config\\.ts names the SMTP server of its alert channel "team" at 127\\.0\\.0\\.1:${mail.port}`));
      assert.equal(hook.connections() + mail.connections(), 0, 'nothing reached either server');

      await initialize([`127.0.0.1:${hook.port}`, `127.0.0.1:${mail.port}`]);
    } finally {
      hook.server.close();
      mail.server.close();
    }
  });
});
