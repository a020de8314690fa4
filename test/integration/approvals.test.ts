import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { until } from '../support/until';
import { gatedAgent, killCliMidTool } from '../vscode/interruptedRun';
import { readTestContext } from '../vscode/testWorkspace';

/** The parts of the records these tests look at (the extension's modules are not imported). */
interface Run {
  readonly id: string;
  readonly state: string;
  readonly result: string | null;
  readonly error: string | null;
}

interface Approval {
  readonly id: string;
  readonly runId: string;
  readonly kind: string;
  readonly args: Record<string, unknown>;
  readonly argsHash: string;
  readonly status: string;
  readonly decision: { readonly action: string; readonly args?: unknown } | null;
  readonly decidedBy: string | null;
  readonly decidedVia: string | null;
  /** The notification's text, as `keel._test.approvals` words it. */
  readonly text: string;
}

/** A notification as the extension's notifier recorded it. */
interface Toast {
  readonly id: number;
  readonly text: string;
  readonly buttons: readonly string[];
  readonly about: readonly string[];
  readonly summary: boolean;
  readonly state: 'open' | 'pressed' | 'closed' | 'retired';
}

interface ApprovalsView {
  readonly pending: readonly Approval[];
  readonly toasts: readonly Toast[];
  readonly statusBar: string | null;
}

interface Outcome {
  readonly decided?: Approval;
  readonly run?: Run;
  readonly error?: string;
  readonly cancelled?: boolean;
}

interface RunsViewItem {
  readonly runId: string;
  readonly state: string;
  readonly approvals: readonly { id: string; label: string; description: string; contextValue: string }[];
}

const EARLIEST = 'Book the earliest flight from NYC to LIS on 2026-12-10';
const TOAST_TEXT = 'Keel · travel wants to book_flight: $640 NYC→LIS (over $600)';

describe('Keel in VS Code: approvals', () => {
  let workspace: string;
  let repoRoot: string;
  let agentUri: vscode.Uri;

  before(async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests need the prepared workspace folder to be open');
    workspace = folder.uri.fsPath;
    repoRoot = readTestContext(workspace).repoRoot;
    agentUri = vscode.Uri.file(join(workspace, 'travel.agent.ts'));
    await vscode.extensions.getExtension('keel.keel-agents')?.activate();
  });

  afterEach(async () => {
    // Whatever a failed test left waiting is rejected, so the next one starts with nothing pending.
    for (const approval of (await approvalsView()).pending) {
      await press({ approvalId: approval.id, action: approval.kind === 'policy' ? 'reject' : 'fail', reason: 'cleaning up after a test' });
    }
  });

  /** The earliest-flight run, paused at its booking, and the notification shown for it. */
  async function pausedRun(): Promise<{ run: Run; approval: Approval; toast: Toast }> {
    const run = await vscode.commands.executeCommand<Run | undefined>('keel.runAgent', agentUri, EARLIEST);
    assert.ok(run, 'keel.runAgent returned no run');
    assert.equal(run.state, 'waiting_approval', `the run stopped ${run.state}: ${run.error ?? ''}`);
    const { approval, toast } = await notified(run.id);
    return { run, approval, toast };
  }

  it('shows a notification for a paused run; Approve resumes it and it completes', async () => {
    const { run, approval, toast } = await pausedRun();
    assert.equal(toast.text, TOAST_TEXT);
    assert.deepEqual(toast.buttons, ['Approve', 'Reject', 'Review…']);
    assert.equal(toast.state, 'open');
    assert.equal(approval.text, TOAST_TEXT);
    assert.equal((await approvalsView()).statusBar, '$(bell) 1 approval');
    const row = (await runsView()).find((item) => item.runId === run.id);
    assert.deepEqual(row?.approvals, [
      { id: approval.id, label: 'book_flight: $640 NYC→LIS', description: 'needs approval · over $600', contextValue: 'approval.policy' },
    ]);

    const outcome = await press({ approvalId: approval.id, action: 'approve' });
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.decided?.decidedVia, 'vscode');
    assert.ok(outcome.decided?.decidedBy, 'the decision names who made it');
    assert.equal(outcome.run?.id, run.id);
    assert.equal(outcome.run?.state, 'completed', `the run stopped ${outcome.run?.state ?? 'nowhere'}: ${outcome.run?.error ?? ''}`);
    assert.match(outcome.run?.result ?? '', /^Booked KL642 for \$640\. Confirmation KEEL-KL642-/);

    const after = await approvalsView();
    assert.ok(!after.pending.some((pending) => pending.id === approval.id), 'the approval is still pending');
    assert.equal(after.toasts.find((shown) => shown.id === toast.id)?.state, 'pressed');
    assert.equal(after.statusBar, null);
    assert.deepEqual((await runsView()).find((item) => item.runId === run.id)?.approvals, []);
  });

  it('passes the reason of a rejection to the model as the tool’s error', async () => {
    const { run, approval } = await pausedRun();
    const reason = 'Over budget: pick a flight under $600.';
    const outcome = await press({ approvalId: approval.id, action: 'reject', reason });
    assert.deepEqual(outcome.decided?.decision, { action: 'reject', reason });
    assert.equal(outcome.run?.id, run.id);
    assert.equal(outcome.run?.state, 'completed');
    assert.ok(outcome.run?.result?.includes(reason), `the answer does not give the reason: ${outcome.run?.result ?? ''}`);
  });

  it('Review… opens the arguments beside the context; approving there runs the edited call, and invalid JSON decides nothing', async () => {
    const { run, approval } = await pausedRun();
    assert.deepEqual(await press({ approvalId: approval.id, action: 'review' }), {});
    const args = await until(() => openDocument('keel-approval', approval.id), 'the arguments document opening');
    const context = await until(() => openDocument('keel-approval-context', approval.id), 'the context document opening');
    assert.deepEqual(JSON.parse(args.getText()), approval.args);
    // The context beside the arguments is the rendered Markdown preview, not its source; the arguments keep the focus.
    const tabs = (): string[] =>
      vscode.window.tabGroups.all.flatMap((group) => group.tabs.map((tab) => (tab.input instanceof vscode.TabInputCustom ? `${group.viewColumn}:${tab.input.viewType}:${tab.label}` : `${group.viewColumn}:${tab.label}`)));
    const preview = await until(() => tabs().find((tab) => /:vscode\.markdown\.preview\.editor:book_flight\.context\.md$/.test(tab)), 'the Markdown preview of the context');
    const focused = await until(() => (vscode.window.activeTextEditor?.document.uri.scheme === 'keel-approval' ? vscode.window.activeTextEditor : undefined), 'the arguments taking the focus again');
    assert.notEqual(preview.split(':')[0], String(focused.viewColumn), `the preview is not beside the arguments: ${JSON.stringify(tabs())}`);
    assert.ok(!vscode.window.visibleTextEditors.some((editor) => editor.document.uri.scheme === 'keel-approval-context'), 'the context opened as Markdown source');
    const contextText = await until(() => (context.getText().includes('Last tool results') ? context.getText() : undefined), 'the context being read');
    for (const expected of ['over $600', '$640 NYC→LIS', EARLIEST, 'The earliest is KL642 at $640; booking it.', '`search_flights` →', '| Deadline | none |']) {
      assert.ok(contextText.includes(expected), `the context does not show ${expected}:\n${contextText}`);
    }

    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', args.uri);
    assert.deepEqual(
      lenses.map((lens) => [lens.command?.title, lens.command?.command]),
      [
        ['travel wants to book_flight: $640 NYC→LIS (over $600)', ''],
        ['Approve', 'keel.approveApproval'],
        ['Reject', 'keel.rejectApproval'],
      ],
    );

    await replaceText(args, '{ "flightId": "UA66", ');
    const refused = await vscode.commands.executeCommand<Outcome>('keel.approveApproval', args.uri);
    assert.match(refused.error ?? '', /^The arguments are not valid JSON \(.+\); nothing was decided\.$/);
    assert.ok((await approvalsView()).pending.some((pending) => pending.id === approval.id), 'invalid JSON decided something');

    const edited = { ...approval.args, flightId: 'UA66', price: 598 };
    await replaceText(args, JSON.stringify(edited, null, 2));
    const outcome = await vscode.commands.executeCommand<Outcome>('keel.approveApproval', args.uri);
    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.decided?.decision?.args, edited, 'the edited arguments were approved');
    assert.equal(outcome.run?.id, run.id);
    assert.equal(outcome.run?.state, 'completed', `the run stopped ${outcome.run?.state ?? 'nowhere'}: ${outcome.run?.error ?? ''}`);
    assert.match(outcome.run?.result ?? '', /^Booked UA66 for \$598\./);
    assert.ok(!tabOpen(approval.id), 'the review is still open after the decision');
  });

  it('refuses to approve arguments that changed under the notification (their hash no longer matches), and decides nothing', async () => {
    const { run, approval } = await pausedRun();
    await tamperArguments(approval.id, 6400);
    const outcome = await press({ approvalId: approval.id, action: 'approve' });
    assert.equal(outcome.decided, undefined);
    assert.match(outcome.error ?? '', /^This decision approves arguments with hash [0-9a-f]{12}…, but approval .+ asks about [0-9a-f]{12}…; nothing was decided\.$/);
    const still = (await approvalsView()).pending.find((pending) => pending.id === approval.id);
    assert.ok(still, 'the approval is no longer pending');
    assert.equal(still.args['price'], 6400);
    const row = (await runsView()).find((item) => item.runId === run.id);
    assert.equal(row?.state, 'waiting_approval');
  });

  it('shows approvals asked for by CLI runs, three notifications at most and one summary, and retires those decided in the CLI', async () => {
    const started = await Promise.all(Array.from({ length: 5 }, () => keel(['run', 'travel.agent.ts', '--input', EARLIEST, '--json'])));
    const runIds = started.map(({ code, stdout, stderr }) => {
      assert.equal(code, 3, `keel run did not stop waiting for a decision:\n${stdout}\n${stderr}`);
      return (JSON.parse(stdout) as { run: Run }).run.id;
    });
    const view = await until(async () => {
      const current = await approvalsView();
      const ours = current.pending.filter((pending) => runIds.includes(pending.runId));
      const covered = ours.every((pending) => current.toasts.some((toast) => toast.about.includes(pending.id)));
      return ours.length === 5 && covered ? current : undefined;
    }, 'the five approvals being announced');
    const ids = view.pending.filter((pending) => runIds.includes(pending.runId)).map((pending) => pending.id);
    const toasts = view.toasts.filter((toast) => toast.about.some((id) => ids.includes(id)));
    const single = toasts.filter((toast) => !toast.summary);
    const summaries = toasts.filter((toast) => toast.summary);
    assert.ok(single.length <= 3, `${single.length} notifications for single approvals`);
    assert.equal(summaries.length, 1, `summaries: ${summaries.map((toast) => toast.text).join(' / ')}`);
    const [summary] = summaries;
    assert.match(summary?.text ?? '', /^Keel · [45] approvals are waiting$/);
    assert.deepEqual(summary?.buttons, ['Review…']);
    assert.equal(view.statusBar, '$(bell) 5 approvals');

    const decided = await Promise.all(ids.map((id) => keel(['reject', id, '--reason', 'Not today.'])));
    for (const { code, stdout, stderr } of decided) assert.equal(code, 0, `keel reject failed:\n${stdout}\n${stderr}`);
    const after = await until(async () => {
      const current = await approvalsView();
      return current.pending.some((pending) => ids.includes(pending.id)) ? undefined : current;
    }, 'the decisions made in the CLI reaching the editor');
    for (const toast of after.toasts.filter((shown) => shown.about.some((id) => ids.includes(id)))) {
      assert.equal(toast.state, 'retired', `"${toast.text}" is still ${toast.state}`);
    }
    assert.equal(after.statusBar, null);
    const rows = await runsView();
    for (const runId of runIds) assert.deepEqual(rows.find((row) => row.runId === runId)?.approvals, [], `run ${runId} still shows an approval`);
  });

  it('asks about a call whose outcome is unknown with Retry, Mark Done… and Fail…; Mark Done… completes the run without calling again', async () => {
    const agent = gatedAgent(workspace, 'unsure', 'unsafe');
    try {
      agent.close();
      const runId = await killCliMidTool(join(repoRoot, 'bin', 'keel.js'), workspace, agent);
      agent.open();
      const paused = await vscode.commands.executeCommand<Run | undefined>('keel.resumeRun', runId);
      assert.equal(paused?.state, 'waiting_approval');
      const { approval, toast } = await notified(runId);
      assert.equal(approval.kind, 'unknown_outcome');
      assert.equal(toast.text, "Keel · unsure's slow_step was cut off when its process stopped: did it take effect?");
      assert.deepEqual(toast.buttons, ['Retry', 'Mark Done…', 'Fail…', 'Review…']);

      const outcome = await press({ approvalId: approval.id, action: 'done', result: 'slept' });
      assert.deepEqual(outcome.decided?.decision, { action: 'done', result: 'slept' });
      assert.equal(outcome.run?.state, 'completed', `the run stopped ${outcome.run?.state ?? 'nowhere'}: ${outcome.run?.error ?? ''}`);
      assert.equal(outcome.run?.result, 'Finished.');
      assert.deepEqual(agent.calls(), [`${runId}:1:0`], 'the unsafe tool was called again');
    } finally {
      agent.open();
      agent.remove();
    }
  });

  it('Keel: Show Approval Stats counts what was asked and decided, per tool and per agent', async () => {
    const text = await vscode.commands.executeCommand<string>('keel.showApprovalStats');
    const all = /^\| all \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|/m.exec(text);
    assert.ok(all, text);
    const [requested, approved, rejected, edited] = all.slice(1, 5).map(Number);
    assert.ok((requested ?? 0) >= 10 && (approved ?? 0) >= 3 && (rejected ?? 0) >= 6 && (edited ?? 0) >= 1, text);
    assert.ok(text.includes('| `book_flight` |') && text.includes('| `travel` |'), text);
    assert.equal(vscode.window.activeTextEditor?.document.getText(), text);
  });
});

function approvalsView(): Thenable<ApprovalsView> {
  return vscode.commands.executeCommand<ApprovalsView>('keel._test.approvals');
}

function runsView(): Thenable<readonly RunsViewItem[]> {
  return vscode.commands.executeCommand<readonly RunsViewItem[]>('keel._test.runsView');
}

function press(params: { approvalId: string; action: string; reason?: string; args?: unknown; result?: unknown }): Thenable<Outcome> {
  return vscode.commands.executeCommand<Outcome>('keel._test.pressApprovalAction', params);
}

/** The pending approval of a run and its notification, once shown. */
async function notified(runId: string): Promise<{ approval: Approval; toast: Toast }> {
  return until(async () => {
    const view = await approvalsView();
    const approval = view.pending.find((pending) => pending.runId === runId);
    const toast = approval && view.toasts.findLast((shown) => !shown.summary && shown.about.includes(approval.id));
    return approval && toast ? { approval, toast } : undefined;
  }, `the notification for run ${runId}`);
}

function openDocument(scheme: string, approvalId: string): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((document) => document.uri.scheme === scheme && document.uri.path.startsWith(`/${approvalId}/`));
}

function tabOpen(approvalId: string): boolean {
  return vscode.window.tabGroups.all.some((group) =>
    group.tabs.some((tab) => tab.input instanceof vscode.TabInputText && tab.input.uri.path.startsWith(`/${approvalId}/`)),
  );
}

async function replaceText(document: vscode.TextDocument, text: string): Promise<void> {
  const edit = new vscode.WorkspaceEdit();
  edit.replace(document.uri, new vscode.Range(0, 0, document.lineCount, 0), text);
  assert.ok(await vscode.workspace.applyEdit(edit), 'the edit was not applied');
}

/**
 * Changes an approval's arguments in the database behind Keel's back (another process writing
 * to it), leaving the hash it recorded: what the person saw no longer matches.
 */
async function tamperArguments(approvalId: string, price: number): Promise<void> {
  const { repoRoot } = readTestContext(workspaceFolder());
  const script = `const Database = require(${JSON.stringify(join(repoRoot, 'node_modules', 'better-sqlite3'))});
const db = new Database(${JSON.stringify(join(workspaceFolder(), '.keel', 'keel.db'))});
db.pragma('busy_timeout = 5000');
const changed = db.prepare("UPDATE approvals SET args = json_set(args, '$.price', ?) WHERE id = ?").run(${price}, ${JSON.stringify(approvalId)}).changes;
if (changed !== 1) throw new Error('no approval ${approvalId}');`;
  const { code, stderr } = await node(['-e', script]);
  assert.equal(code, 0, stderr);
}

/** `node bin/keel.js …` in the workspace, as a person would from a terminal. */
function keel(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return node([join(readTestContext(workspaceFolder()).repoRoot, 'bin', 'keel.js'), ...args]);
}

function node(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env['ELECTRON_RUN_AS_NODE'];
    const child = spawn('node', args, { cwd: workspaceFolder(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (error) => reject(new Error(`could not start node: ${error.message}`)));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function workspaceFolder(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'no workspace folder');
  return folder.uri.fsPath;
}
