import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { EXAMPLE_INPUT, EXAMPLE_RESULT, readTestContext, type TestContext } from '../vscode/testWorkspace';

/** The parts of a RunRecord these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly agent: string;
  readonly state: string;
  readonly stepCount: number;
  readonly result: string | null;
  readonly error: string | null;
}

/** One top-level row of the Runs view, as `keel._test.runsView` reports it. */
interface RunsViewItem {
  readonly runId: string;
  readonly label: string;
  readonly description: string;
  readonly state: string;
}

const EXTENSION_ID = 'keel.keel-agents';

describe('Keel in VS Code', () => {
  let workspace: string;
  let context: TestContext;
  let agentUri: vscode.Uri;

  before(() => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    context = readTestContext(workspace);
    agentUri = vscode.Uri.file(join(workspace, 'travel.agent.ts'));
  });

  it('is installed and activates', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not among the extensions`);
    await extension.activate();
    assert.equal(extension.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    for (const command of ['keel.runAgent', 'keel.refreshRuns', 'keel._test.runsView']) {
      assert.ok(commands.includes(command), `${command} is not registered`);
    }
  });

  it('runs the example agent to completion with Keel: Run Agent', async () => {
    const run = await runAgent(agentUri, EXAMPLE_INPUT);
    assert.ok(run, 'keel.runAgent returned no run');
    assert.equal(run.state, 'completed', `the run ended ${run.state}: ${run.error ?? ''}`);
    assert.equal(run.agent, 'travel');
    assert.equal(run.stepCount, 5);
    assert.equal(run.result, EXAMPLE_RESULT);

    const [top] = await runsView();
    assert.ok(top, 'the Runs view is empty');
    assert.equal(top.runId, run.id);
    assert.equal(top.label, 'travel');
    assert.equal(top.state, 'completed');
    // The row tells this run from the others: its input and when it started.
    assert.match(top.description, /^"Book the cheapest flight from NYC to LI…" · completed · 5 steps · [^·]+ · (just now|\d+ s ago)$/);
  });

  it('shows a run recorded by the CLI after Refresh Runs', async () => {
    const cliRun = await runCli(context.repoRoot, workspace, EXAMPLE_INPUT);
    assert.equal(cliRun.state, 'completed');
    await vscode.commands.executeCommand('keel.refreshRuns');
    const items = await runsView();
    assert.equal(items[0]?.runId, cliRun.id, `the CLI's run ${cliRun.id} is not at the top of the Runs view`);
    assert.equal(items[0]?.state, 'completed');
    assert.ok(items.length >= 2, 'the earlier run is no longer in the Runs view');
  });

  describe('with a broken agent file', () => {
    const brokenName = 'broken.agent.ts';

    after(() => rmSync(join(workspace, brokenName), { force: true }));

    it('returns no run and keeps the extension working', async () => {
      const broken = join(workspace, brokenName);
      writeFileSync(broken, "import { defineAgent } from 'keel-agents';\nexport default defineAgent({ name: 'broken',\n");
      const run = await runAgent(vscode.Uri.file(broken), 'hello');
      assert.equal(run, undefined);
      assert.equal(vscode.extensions.getExtension(EXTENSION_ID)?.isActive, true);
    });

    it('still runs a good agent afterwards', async () => {
      const run = await runAgent(agentUri, EXAMPLE_INPUT);
      assert.equal(run?.state, 'completed');
      assert.equal(run?.result, EXAMPLE_RESULT);
      const [top] = await runsView();
      assert.equal(top?.runId, run?.id);
    });
  });
});

function runAgent(file: vscode.Uri, input: string): Thenable<Run | undefined> {
  return vscode.commands.executeCommand<Run | undefined>('keel.runAgent', file, input);
}

function runsView(): Thenable<readonly RunsViewItem[]> {
  return vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
}

/** `node bin/keel.js run travel.agent.ts` in the workspace, as a person would from a terminal. */
function runCli(repoRoot: string, cwd: string, input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env['ELECTRON_RUN_AS_NODE'];
    const child = spawn('node', [join(repoRoot, 'bin', 'keel.js'), 'run', 'travel.agent.ts', '--input', input, '--json'], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (error) => reject(new Error(`could not start node for the CLI: ${error.message}`)));
    child.once('close', (code) => {
      if (code !== 0) {
        reject(new Error(`keel run exited with ${code}: ${stderr || stdout}`));
        return;
      }
      try {
        resolve((JSON.parse(stdout) as { run: Run }).run);
      } catch (error) {
        reject(new Error(`keel run --json printed something that is not JSON (${String(error)}): ${stdout.slice(0, 500)}`));
      }
    });
  });
}
