import * as vscode from 'vscode';
import type { Approval } from '../../protocol/records';
import { ACTION_LABELS, actionsFor, approvalMessage, argumentsText, parseArguments, reviewContext, type ApprovalAction } from './approvalText';
import type { PendingApprovals } from './pendingApprovals';
import type { RuntimeClient } from '../client/runtimeClient';

/** The editable arguments of an approval under review: `keel-approval:/<approvalId>/<tool>.args.json`. */
export const ARGUMENTS_SCHEME = 'keel-approval';
/** The read-only context beside them: `keel-approval-context:/<approvalId>/<tool>.context.md`. */
export const CONTEXT_SCHEME = 'keel-approval-context';
/** The custom editor of VS Code's built-in Markdown extension that shows a document rendered. */
const MARKDOWN_PREVIEW = 'vscode.markdown.preview.editor';

/** The command each action runs from the review (CodeLens, editor title) and the Runs view. */
export const ACTION_COMMANDS: Readonly<Record<ApprovalAction, string>> = {
  approve: 'keel.approveApproval',
  reject: 'keel.rejectApproval',
  retry: 'keel.retryApproval',
  done: 'keel.markApprovalDone',
  fail: 'keel.failApproval',
  review: 'keel.reviewApproval',
};

/**
 * Review…: an approval's arguments as an editable JSON document (a policy approval's; the
 * arguments of a call whose outcome is unknown cannot change, so theirs is read-only), beside a
 * read-only view of why it is asked and what the run did so far. CodeLens and the editor title
 * offer the decisions; approving from here approves the arguments as the document has them.
 */
export class ApprovalReview implements vscode.Disposable {
  private readonly files = new ArgumentsFileSystem((uri) => this.restore(uri));
  /** Each approval as it was when its review opened: what the person is deciding about. */
  private readonly reviewed = new Map<string, Approval>();
  private readonly contextChanged = new vscode.EventEmitter<vscode.Uri>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.files, this.contextChanged, this.lensesChanged];

  constructor(
    private readonly client: RuntimeClient,
    private readonly approvals: PendingApprovals,
  ) {
    this.disposables.push(
      vscode.workspace.registerFileSystemProvider(ARGUMENTS_SCHEME, this.files, { isCaseSensitive: true }),
      vscode.workspace.registerTextDocumentContentProvider(CONTEXT_SCHEME, {
        onDidChange: this.contextChanged.event,
        provideTextDocumentContent: (uri) => this.context(uri),
      }),
      vscode.languages.registerCodeLensProvider(
        { scheme: ARGUMENTS_SCHEME },
        { onDidChangeCodeLenses: this.lensesChanged.event, provideCodeLenses: (document) => this.lenses(document) },
      ),
      // The edits of a decided approval are dropped once nothing shows them.
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (document.uri.scheme === ARGUMENTS_SCHEME && !approvals.get(approvalIdOf(document.uri))) this.files.forget(approvalIdOf(document.uri));
      }),
      // A decision made elsewhere shows in the open reviews.
      approvals.onDidChange(() => {
        this.lensesChanged.fire();
        for (const document of vscode.workspace.textDocuments) {
          if (document.uri.scheme === CONTEXT_SCHEME) this.contextChanged.fire(document.uri);
        }
      }),
    );
  }

  async open(approval: Approval): Promise<void> {
    this.reviewed.set(approval.id, approval);
    const uri = argumentsUri(approval);
    // Opened again, a review keeps the edits made so far.
    if (!this.files.has(uri)) this.files.put(uri, argumentsText(approval.args), approval.kind !== 'policy');
    const args = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(args, { viewColumn: vscode.ViewColumn.Active, preview: false });
    // The context is Markdown to read, not to edit: it opens in VS Code's Markdown preview editor, beside the arguments, which keep the focus.
    const options: vscode.TextDocumentShowOptions = { viewColumn: vscode.ViewColumn.Beside, preview: false, preserveFocus: true };
    await vscode.commands.executeCommand('vscode.openWith', contextUri(approval), MARKDOWN_PREVIEW, options);
  }

  /** The approval a review document is about, as it was when the review opened. */
  approvalOf(uri: vscode.Uri): Approval | undefined {
    if (uri.scheme !== ARGUMENTS_SCHEME && uri.scheme !== CONTEXT_SCHEME) return undefined;
    const id = approvalIdOf(uri);
    return this.reviewed.get(id) ?? this.approvals.get(id);
  }

  /** The arguments as the review document has them now, saved or not. */
  async argumentsIn(uri: vscode.Uri): Promise<{ ok: true; args: unknown } | { ok: false; error: string }> {
    const document = vscode.workspace.textDocuments.find((candidate) => candidate.uri.toString() === uri.toString()) ?? (await vscode.workspace.openTextDocument(uri));
    return parseArguments(document.getText());
  }

  /** Closes the review of a decided approval; its edits are in the decision, so nothing asks to save them. */
  async close(approvalId: string): Promise<void> {
    const ours = (uri: vscode.Uri) => (uri.scheme === ARGUMENTS_SCHEME || uri.scheme === CONTEXT_SCHEME) && approvalIdOf(uri) === approvalId;
    for (const document of vscode.workspace.textDocuments) {
      if (!ours(document.uri) || !document.isDirty) continue;
      await vscode.window.showTextDocument(document, { preview: false });
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
    const tabs = vscode.window.tabGroups.all.flatMap((group) => group.tabs).filter((tab) => tab.input instanceof vscode.TabInputText && ours(tab.input.uri));
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs, true);
    this.reviewed.delete(approvalId);
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }

  private lenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const top = new vscode.Range(0, 0, 0, 0);
    const approval = this.approvalOf(document.uri);
    const pending = approval && this.approvals.get(approval.id);
    if (!approval || !pending) return [new vscode.CodeLens(top, { title: 'This approval is no longer pending.', command: '' })];
    return [
      new vscode.CodeLens(top, { title: approvalMessage(pending, Date.now()).replace(/^Keel · /, ''), command: '' }),
      ...actionsFor(approval.kind)
        .filter((action) => action !== 'review')
        .map((action) => new vscode.CodeLens(top, { title: ACTION_LABELS[action], command: ACTION_COMMANDS[action], arguments: [document.uri] })),
    ];
  }

  private async context(uri: vscode.Uri): Promise<string> {
    const id = approvalIdOf(uri);
    const approval = this.approvals.get(id) ?? this.reviewed.get(id);
    if (!approval) return `# Approval ${id}\n\nThis approval is no longer pending.\n`;
    const { run, steps } = await this.client.request('getRun', { runId: approval.runId }).catch(() => ({ run: undefined, steps: [] }));
    return reviewContext(approval, run, steps, Date.now());
  }

  /** After a window reload, an open review of a still-pending approval comes back. */
  private async restore(uri: vscode.Uri): Promise<{ text: string; readonly: boolean } | undefined> {
    await this.approvals.refresh();
    const approval = this.approvals.get(approvalIdOf(uri));
    if (!approval || uri.path !== argumentsUri(approval).path) return undefined;
    this.reviewed.set(approval.id, approval);
    return { text: argumentsText(approval.args), readonly: approval.kind !== 'policy' };
  }
}

function argumentsUri(approval: Pick<Approval, 'id' | 'kind' | 'tool'>): vscode.Uri {
  return vscode.Uri.from({ scheme: ARGUMENTS_SCHEME, path: `/${approval.id}/${approval.tool}.${approval.kind === 'policy' ? 'args' : 'call'}.json` });
}

function contextUri(approval: Pick<Approval, 'id' | 'tool'>): vscode.Uri {
  return vscode.Uri.from({ scheme: CONTEXT_SCHEME, path: `/${approval.id}/${approval.tool}.context.md` });
}

function approvalIdOf(uri: vscode.Uri): string {
  return uri.path.split('/')[1] ?? '';
}

interface ReviewFile {
  data: Uint8Array;
  readonly ctime: number;
  mtime: number;
  readonly readonly: boolean;
}

/** The arguments under review, in memory: saving keeps an edit here, nothing goes to disk. */
class ArgumentsFileSystem implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly files = new Map<string, ReviewFile>();
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;

  constructor(private readonly restore: (uri: vscode.Uri) => Promise<{ text: string; readonly: boolean } | undefined>) {}

  dispose(): void {
    this.changed.dispose();
  }

  has(uri: vscode.Uri): boolean {
    return this.files.has(uri.path);
  }

  put(uri: vscode.Uri, text: string, readonly: boolean): void {
    const now = Date.now();
    this.files.set(uri.path, { data: new TextEncoder().encode(text), ctime: now, mtime: now, readonly });
  }

  forget(approvalId: string): void {
    for (const path of [...this.files.keys()]) if (path.startsWith(`/${approvalId}/`)) this.files.delete(path);
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    if (uri.path === '/' || !uri.path.slice(1).includes('/')) return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0 };
    const file = await this.find(uri);
    return {
      type: vscode.FileType.File,
      ctime: file.ctime,
      mtime: file.mtime,
      size: file.data.byteLength,
      ...(file.readonly ? { permissions: vscode.FilePermission.Readonly } : {}),
    };
  }

  readDirectory(): [string, vscode.FileType][] {
    return [];
  }

  createDirectory(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return (await this.find(uri)).data;
  }

  writeFile(uri: vscode.Uri, content: Uint8Array): void {
    const file = this.files.get(uri.path);
    if (!file) throw vscode.FileSystemError.FileNotFound(uri);
    if (file.readonly) throw vscode.FileSystemError.NoPermissions(uri);
    file.data = content;
    file.mtime = Date.now();
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  delete(uri: vscode.Uri): void {
    this.files.delete(uri.path);
  }

  rename(oldUri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(oldUri);
  }

  private async find(uri: vscode.Uri): Promise<ReviewFile> {
    const known = this.files.get(uri.path);
    if (known) return known;
    const restored = await this.restore(uri);
    if (!restored) throw vscode.FileSystemError.FileNotFound(uri);
    this.put(uri, restored.text, restored.readonly);
    const file = this.files.get(uri.path);
    if (!file) throw vscode.FileSystemError.FileNotFound(uri);
    return file;
  }
}
