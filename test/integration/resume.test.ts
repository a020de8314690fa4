import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { until } from '../support/until';
import { gatedAgent, killCliMidTool, type Effect, type GatedAgent } from '../vscode/interruptedRun';
import { readTestContext } from '../vscode/testWorkspace';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly agent: string;
  readonly state: string;
  readonly traceId: string;
  readonly result: string | null;
  readonly error: string | null;
}

/** One top-level row of the Runs view, as `keel._test.runsView` reports it. */
interface RunsViewItem {
  readonly runId: string;
  readonly label: string;
  readonly description: string;
  readonly state: string;
  readonly tooltip: string;
}

describe('Keel in VS Code: interrupted runs', () => {
  let workspace: string;
  let keelJs: string;
  const agents: GatedAgent[] = [];

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    keelJs = join(readTestContext(workspace).repoRoot, 'bin', 'keel.js');
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
    // The runtime process is up before the CLI is killed: the Runs view learns of the interruption
    // from listRuns, not from a runtime process starting.
    await vscode.commands.executeCommand('keel.refreshRuns');
  });

  after(() => {
    for (const agent of agents.splice(0)) {
      agent.open();
      agent.remove();
    }
  });

  function agent(name: string, effect: Effect): GatedAgent {
    const made = gatedAgent(workspace, name, effect);
    agents.push(made);
    return made;
  }

  it('shows a CLI run killed mid-tool as interrupted, and Resume Run completes it in the same run', async () => {
    const slow = agent('slow', 'idempotent');
    slow.close();
    const runId = await killCliMidTool(keelJs, workspace, slow);

    const row = await refreshedRow(runId);
    assert.equal(row.state, 'interrupted');
    assert.equal(row.label, 'slow');
    assert.match(row.description, /^".*" · interrupted · \d+ steps? · /);
    assert.match(row.tooltip, /Resume Run/);

    slow.open();
    const resumed = await resumeRun(runId);
    assert.ok(resumed, 'keel.resumeRun returned no run');
    assert.equal(resumed.id, runId, 'the same run goes on');
    assert.equal(resumed.state, 'completed', `the resumed run stopped ${resumed.state}: ${resumed.error ?? ''}`);
    assert.equal(resumed.result, 'Finished.');
    assert.deepEqual(slow.calls(), [`${runId}:1:0`, `${runId}:1:0`], 'the idempotent tool ran again with the same key');

    const after = (await runsView()).find((item) => item.runId === runId);
    assert.ok(after, `run ${runId} is no longer in the Runs view`);
    assert.equal(after.state, 'completed');
    assert.match(after.description, /^".*" · completed · 3 steps · /);
  });

  it('pauses a resumed run whose unsafe tool was cut off, says how to decide, and refuses to resume it until then', async () => {
    const unsafe = agent('unsafe', 'unsafe');
    unsafe.close();
    const runId = await killCliMidTool(keelJs, workspace, unsafe);
    unsafe.open();

    const paused = await resumeRun(runId);
    assert.ok(paused, 'keel.resumeRun returned no run');
    assert.equal(paused.id, runId);
    assert.equal(paused.state, 'waiting_approval', `the run stopped ${paused.state}: ${paused.error ?? ''}`);
    assert.deepEqual(unsafe.calls(), [`${runId}:1:0`], 'the unsafe tool was not called again');

    const row = (await runsView()).find((item) => item.runId === runId);
    assert.ok(row, `run ${runId} is not in the Runs view`);
    assert.equal(row.state, 'waiting_approval');
    assert.match(row.description, /^".*" · waiting for a decision · /);
    assert.ok(row.tooltip.includes('slow_step was running when its process stopped'), row.tooltip);
    assert.ok(row.tooltip.includes(`keel resolve appr_${runId.slice('run_'.length)}_2_outcome --retry | --done`), row.tooltip);

    assert.equal(await resumeRun(runId), undefined, 'a run waiting for a decision was resumed');
    assert.equal((await refreshedRow(runId)).state, 'waiting_approval');
    assert.deepEqual(unsafe.calls(), [`${runId}:1:0`]);
  });

  it('stops a resumed run whose agent changed since, with the step where its journal diverged', async () => {
    const changed = agent('changed', 'idempotent');
    changed.close();
    const runId = await killCliMidTool(keelJs, workspace, changed);
    changed.open();
    changed.rewrite('Take the slow step, then another one.');

    const stopped = await resumeRun(runId);
    assert.ok(stopped, 'keel.resumeRun returned no run');
    assert.equal(stopped.id, runId);
    assert.equal(stopped.state, 'interrupted');
    assert.match(stopped.error ?? '', new RegExp(`^Run ${runId} no longer matches its agent at step 1: `));
    assert.deepEqual(changed.calls(), [`${runId}:1:0`], 'nothing ran after the divergence');
  });

  it('ends the progress of a run whose runtime process was killed, with the run interrupted, and resumes it', async () => {
    const crash = agent('crash', 'idempotent');
    crash.close();
    const running = vscode.commands.executeCommand<Run | undefined>('keel.runAgent', vscode.Uri.file(crash.file), 'go');
    await until(() => (crash.calls().length === 1 ? true : undefined), 'the tool starting in the runtime process');
    const runId = crash.calls()[0]?.split(':')[0] ?? '';
    const daemon = runtimeProcessOf(workspace);
    process.kill(daemon, 'SIGKILL');

    const stopped = await running;
    assert.ok(stopped, 'keel.runAgent returned no run');
    assert.equal(stopped.id, runId);
    assert.equal(stopped.state, 'interrupted', `the run stopped ${stopped.state}: ${stopped.error ?? ''}`);
    assert.notEqual(runtimeProcessOf(workspace), daemon, 'a new runtime process took over');

    crash.open();
    const resumed = await resumeRun(runId);
    assert.ok(resumed, 'keel.resumeRun returned no run');
    assert.equal(resumed.state, 'completed', `the resumed run stopped ${resumed.state}: ${resumed.error ?? ''}`);
    assert.equal(resumed.traceId, stopped.traceId, 'the same trace');
  });
});

function runsView(): Thenable<readonly RunsViewItem[]> {
  return vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
}

function resumeRun(runId: string): Thenable<Run | undefined> {
  return vscode.commands.executeCommand<Run | undefined>('keel.resumeRun', runId);
}

async function refreshedRow(runId: string): Promise<RunsViewItem> {
  await vscode.commands.executeCommand('keel.refreshRuns');
  const row = (await runsView()).find((item) => item.runId === runId);
  assert.ok(row, `run ${runId} is not in the Runs view`);
  return row;
}

/** The pid of the Keel runtime process serving `workspace` (dist/daemon.js running there). */
function runtimeProcessOf(workspace: string): number {
  const cwd = realpathSync(workspace);
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => arg.endsWith(join('dist', 'daemon.js'))) && readlinkSync(`/proc/${name}/cwd`) === cwd) found.push(Number(name));
    } catch {
      // The process ended while being read.
    }
  }
  assert.equal(found.length, 1, `expected one runtime process in ${workspace}, found ${found.length}`);
  return found[0] ?? 0;
}
