import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRecord } from '../../src/runtime/store/checkpointStore';
import { KEEL, describeOutcome, printedRunId, showRun } from '../support/keelCli';
import { FIXTURE_SERVER, fixtureFiles, isAlive, loggedCalls, type FixtureFiles } from '../support/mcpFixture';
import { REPO_ROOT, runNode, spawnNode } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';
import { until } from '../support/until';

/**
 * Real processes, killed for real: a runtime process (the keel CLI, and the editor's runtime
 * process) is SIGKILLed while an MCP server it started is in the middle of an `unsafe` call. No
 * server outlives it, and after a resume and a person's decision the server has seen the call
 * exactly once.
 */

/** An agent whose one call is a slow payment through the fixture server. */
function writeAgent(dir: string, files: FixtureFiles): string {
  const file = join(dir, 'pay.agent.ts');
  writeFileSync(
    file,
    `import { defineAgent, scriptedModel } from 'keel-agents';
export default defineAgent({
  name: 'payer',
  instructions: 'Pay what you are asked to pay.',
  model: scriptedModel((c) => (c.turn === 0 ? { toolCalls: [{ name: 'send_payment', args: { to: 'acct-7', amount: 40, delayMs: 60000 } }] } : 'Paid: ' + c.toolResults[0].content)),
  mcp: {
    servers: {
      ledger: {
        command: ${JSON.stringify(process.execPath)},
        args: [${JSON.stringify(FIXTURE_SERVER)}],
        env: { MCP_FIXTURE_LOG: ${JSON.stringify(files.log)}, MCP_FIXTURE_PIDFILE: ${JSON.stringify(files.pidFile)} },
      },
    },
  },
});
`,
  );
  return file;
}

/** The server's process id once it has received the payment. */
function serverInCall(files: FixtureFiles): Promise<number> {
  return until(
    () => (loggedCalls(files).some((call) => call.name === 'send_payment') && existsSync(files.pidFile) ? Number(readFileSync(files.pidFile, 'utf8')) : undefined),
    'the payment reaching the MCP server',
    60_000,
  );
}

describe('MCP under SIGKILL of the runtime process', function () {
  this.timeout(180_000);
  const tempDir = useTempDirs();

  before(() => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  });

  it('keel run killed during an unsafe MCP call: the server goes with it, and after resume and a decision it saw the call once', async () => {
    const dir = tempDir('keel-mcp-kill-');
    const files = fixtureFiles(dir);
    const agentFile = writeAgent(dir, files);
    const db = join(dir, 'keel.db');
    const keel = spawnNode(KEEL, ['run', agentFile, '--input', 'pay acct-7 40', '--db', db], { cwd: dir });
    keel.child.stdin.end();
    const server = await serverInCall(files);
    assert.ok(isAlive(server));
    keel.child.kill('SIGKILL');
    await keel.exited;
    await until(() => (isAlive(server) ? undefined : true), 'the MCP server ending after its runtime process was killed', 10_000);

    const runId = printedRunId(keel.stdout(), 'payer');
    assert.ok(runId, `no run id printed:\n${keel.stdout()}`);
    const resumed = await runNode(KEEL, ['resume', runId, '--json', '--db', db], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(resumed.code, 3, `the resume waits for a person: ${describeOutcome(resumed)}`);
    const pending = (JSON.parse(resumed.stdout) as { approvals: ApprovalRecord[] }).approvals;
    assert.equal(pending[0]?.kind, 'unknown_outcome');
    assert.equal(loggedCalls(files).filter((call) => call.name === 'send_payment').length, 1, 'the resume did not call again on its own');

    const decided = await runNode(KEEL, ['resolve', pending[0]!.id, '--done', JSON.stringify('Sent 40 to acct-7: confirmation P-740.'), '--db', db], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(decided.code, 0, describeOutcome(decided));
    const snapshot = await showRun(runId, db, { cwd: dir });
    assert.equal(snapshot.run.state, 'completed');
    assert.equal(snapshot.run.result, 'Paid: Sent 40 to acct-7: confirmation P-740.');
    const payments = loggedCalls(files).filter((call) => call.name === 'send_payment');
    assert.equal(payments.length, 1, 'the server saw the payment exactly once');
    assert.equal(payments[0]?.meta?.['keel/idempotencyKey'], `${runId}:1:0`);
    const last = Number(readFileSync(files.pidFile, 'utf8'));
    await until(() => (isAlive(last) ? undefined : true), 'the server the decision started ending with keel resolve');
  });

  it('the editor’s runtime process killed during an MCP call leaves no server running', async () => {
    const dir = tempDir('keel-mcp-daemon-');
    const files = fixtureFiles(dir);
    const agentFile = writeAgent(dir, files);
    const daemon = new RuntimeProcess(dir, { KEEL_DB: join(dir, 'keel.db') });
    try {
      await daemon.initialize();
      await daemon.request('startRun', { agentFile, input: 'pay acct-7 40' });
      const server = await serverInCall(files);
      process.kill(daemon.pid, 'SIGKILL');
      await daemon.proc.exited;
      await until(() => (isAlive(server) ? undefined : true), 'the MCP server ending after the runtime process was killed', 10_000);
    } finally {
      if (daemon.running) daemon.proc.child.kill('SIGKILL');
    }
  });
});

