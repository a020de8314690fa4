import * as assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { until } from '../support/until';

/** What `keel._test.goldenTests` reports (the extension's modules are not imported). */
interface GoldenSnapshot {
  readonly files: readonly { readonly id: string; readonly label: string; readonly error: string | null; readonly cases: readonly { readonly id: string; readonly label: string; readonly tags: readonly string[]; readonly line: number | null }[] }[];
  readonly results: Readonly<Record<string, { readonly status: string; readonly runId: string | null; readonly messages: readonly { readonly text: string; readonly expected: string | null; readonly actual: string | null; readonly line: number | null }[] }>>;
}

interface TraceView {
  readonly runId: string;
  readonly spanCount: number;
}

const FAILING = `version: 1
agent: ./travel.agent.ts
cases:
  - name: books the earliest flight
    tags: [edge]
    input: Book the cheapest flight from NYC to LIS on 2026-12-10
    expect:
      answer: { contains: [TP202] }
`;

const BROKEN = `version: 1
agent: ./travel.agent.ts
cases:
  - name: a
    tags: [happy, sunny]
    input: hi
    expect: {}
`;

function snapshot(rediscover = false): Thenable<GoldenSnapshot> {
  return vscode.commands.executeCommand<GoldenSnapshot>('keel._test.goldenTests', rediscover);
}

function runGolden(ids: readonly string[] | undefined, profile: 'cassette' | 'live'): Thenable<GoldenSnapshot> {
  return vscode.commands.executeCommand<GoldenSnapshot>('keel._test.runGolden', ids, profile);
}

describe('Golden tests in the Test Explorer', () => {
  let workspace: string;

  before(() => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
  });

  after(() => {
    for (const name of ['failing.golden.yaml', 'broken.golden.yaml']) rmSync(join(workspace, name), { force: true });
  });

  it('discovers the golden file and shows each case at its line', async () => {
    const { files } = await snapshot(true);
    const file = files.find((candidate) => candidate.label === 'travel.golden.yaml');
    assert.ok(file, `no travel.golden.yaml among ${files.map((candidate) => candidate.label).join(', ')}`);
    assert.equal(file.error, null);
    assert.equal(file.cases.length, 6);
    const lines = readFileSync(join(workspace, 'travel.golden.yaml'), 'utf8').split('\n');
    for (const goldenCase of file.cases) {
      assert.equal(lines[goldenCase.line ?? -1], `  - name: ${goldenCase.label}`);
    }
    assert.deepEqual(file.cases[0]?.tags, ['happy']);
  });

  it('runs every case from its cassette, and they pass', async () => {
    const { files, results } = await runGolden(undefined, 'cassette');
    const file = files.find((candidate) => candidate.label === 'travel.golden.yaml');
    assert.ok(file);
    for (const goldenCase of file.cases) {
      const result = results[goldenCase.id];
      assert.equal(result?.status, 'passed', `${goldenCase.label}: ${JSON.stringify(result)}`);
      assert.match(result.runId ?? '', /^run_/);
    }
  });

  it('shows a failing case as a diff of expected and actual, linked to its trace', async () => {
    writeFileSync(join(workspace, 'failing.golden.yaml'), FAILING);
    const id = await until(async () => {
      const { files } = await snapshot();
      return files.find((candidate) => candidate.label === 'failing.golden.yaml')?.cases[0]?.id;
    }, 'the failing case to be discovered');
    const { results } = await runGolden([id], 'live');
    const result = results[id];
    assert.equal(result?.status, 'failed', JSON.stringify(result));
    const [message] = result.messages;
    assert.ok(message);
    assert.match(message.text, /answer\\?\.contains: The answer does not contain "TP202"/);
    assert.equal(message.expected, '…TP202…');
    assert.equal(message.actual, 'Booked UA66 for $598. Confirmation KEEL-UA66-30.');
    assert.equal(message.line, 3);
    const runId = result.runId;
    assert.ok(runId);
    // VS Code's peek header shows a message's first line only: the link is on it.
    assert.ok(message.text.split('\n')[0]?.includes(`](command:keel.showTrace?${encodeURIComponent(JSON.stringify([runId]))})`), message.text);

    // The link opens the run's timeline, read from the golden test store.
    await vscode.commands.executeCommand('keel.showTrace', runId);
    const view = await until(async () => {
      const views = await vscode.commands.executeCommand<readonly TraceView[]>('keel._test.traceViews');
      return views.find((candidate) => candidate.runId === runId && candidate.spanCount > 0);
    }, 'the trace of the failed case');
    assert.ok(view.spanCount >= 5);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('puts a broken file\'s error on its item, and reads the file again when it changes', async () => {
    const file = join(workspace, 'broken.golden.yaml');
    writeFileSync(file, BROKEN);
    const error = await until(async () => {
      const { files } = await snapshot();
      return files.find((candidate) => candidate.label === 'broken.golden.yaml')?.error ?? undefined;
    }, 'the broken file to show its error');
    assert.match(error, /^line 5: case "a": tag "sunny" is not one of happy, edge, adversarial\.$/);

    writeFileSync(file, BROKEN.replace('[happy, sunny]', '[happy]'));
    const fixed = await until(async () => {
      const { files } = await snapshot();
      const item = files.find((candidate) => candidate.label === 'broken.golden.yaml');
      return item && item.error === null && item.cases.length === 1 ? item : undefined;
    }, 'the fixed file to show its case');
    assert.equal(fixed.cases[0]?.label, 'a');
  });
});
