import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestateEngine } from '../../src/runtime/engine/restateEngine';
import { startConformanceApi, type ConformanceApi } from '../support/conformanceApi';
import { restateOn, type EngineBackend, type EngineHarness } from '../support/engineBackends';
import { REPO_ROOT } from '../support/processes';
import { DAEMON, RuntimeProcess } from '../support/runtimeProcess';

/**
 * The editor's side of runs on Restate: its runtime process, on the same database, lists a run
 * that Restate executes, resumes none of it itself, and passes a decision made in the editor to
 * the run's workflow, which goes on to the end.
 */
describe('runs on Restate, seen and decided from the editor’s runtime process', function () {
  this.timeout(90_000);
  const fixtures = join(REPO_ROOT, 'test', 'conformance', 'fixtures');
  let api: ConformanceApi;
  let backend: EngineBackend;
  let h: EngineHarness;
  let editor: RuntimeProcess | undefined;
  let workspace = '';

  before(async function () {
    this.timeout(120_000);
    assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests');
    api = await startConformanceApi();
    backend = restateOn('SQLite', { env: { KEEL_CONFORMANCE_API: api.url }, postgres: () => Promise.resolve('not needed') }, fixtures);
    const missing = await backend.setUp();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    h = backend.harness();
    workspace = mkdtempSync(join(tmpdir(), 'keel-editor-'));
  });

  after(async () => {
    await editor?.kill();
    await backend.tearDown();
    await api.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  it('lists the paused run, and an Approve there lets it finish on Restate', async () => {
    const runId = await h.engine.start({ agentFile: join(fixtures, 'purchase.agent.ts'), input: 'Buy for 300' });
    const paused = await h.engine.wait(runId, { timeoutMs: 30_000 });
    assert.equal(paused.state, 'waiting_approval');

    assert.ok(h.engine instanceof RestateEngine);
    editor = new RuntimeProcess(workspace, { KEEL_RESTATE_URL: h.engine.ingressUrl });
    await editor.request('initialize', { workspaceRoot: workspace, settings: { 'keel.databasePath': h.location ?? '' } });
    const listed = await editor.request('listRuns', {});
    assert.deepEqual(
      listed.filter((run) => run.id === runId).map((run) => run.state),
      ['waiting_approval'],
    );
    const [approval] = await editor.request('listApprovals', { runId, status: 'pending' });
    assert.ok(approval, 'the editor sees no pending approval');

    const { approval: decided, resumed } = await editor.request('decide', { approvalId: approval.id, request: { action: 'approve', argsHash: approval.argsHash } });
    assert.equal(decided.status, 'decided');
    assert.equal(decided.decidedVia, 'vscode');
    assert.equal(resumed, true);
    const done = await h.engine.wait(runId, { timeoutMs: 30_000 });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.match(done.result ?? '', /^Bought: ORD-/);
    // Restate executed it: the editor's process never claimed it.
    assert.match(done.owner ?? '', new RegExp(`^restate/${runId}/`));
    assert.equal(api.requestsOf(runId, '/buy').length, 1);
  });
});
