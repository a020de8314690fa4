import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import type { GoldenFileCases } from '../../protocol/daemon';
import type { AssertionResult, CaseReport, CaseRun, TextRange } from '../../protocol/golden';
import type { RuntimeClient } from '../client/runtimeClient';
import type { EditorSettings } from '../client/settings';

/**
 * Golden tests in VS Code's Test Explorer: one TestController whose items are the golden files of
 * the workspace (`keel.goldenFiles`) and their cases, each at its line. Cases run in the runtime
 * process, replayed from their cassettes (the default profile) or live; results stream in case by
 * case. A failure shows its failed assertions, as a diff of expected and actual where there is one,
 * and links to the run's trace. A file that cannot be read shows its error on its item.
 */

type GoldenItem = { readonly kind: 'file'; readonly uri: vscode.Uri } | { readonly kind: 'case'; readonly uri: vscode.Uri; readonly name: string };

export type GoldenProfile = 'cassette' | 'live';

/** What the internal test command reports of the Test Explorer's golden items and their last results (tags filter as `@happy`). */
export interface GoldenTestsSnapshot {
  readonly files: readonly {
    readonly id: string;
    readonly label: string;
    readonly error: string | null;
    readonly cases: readonly { readonly id: string; readonly label: string; readonly tags: readonly string[]; readonly line: number | null }[];
  }[];
  readonly results: Readonly<Record<string, GoldenOutcome>>;
}

export interface GoldenOutcome {
  readonly status: 'passed' | 'failed' | 'errored' | 'skipped';
  readonly runId: string | null;
  readonly messages: readonly { readonly text: string; readonly expected: string | null; readonly actual: string | null; readonly line: number | null }[];
}

export interface GoldenTestsDeps {
  readonly client: RuntimeClient;
  readonly log: vscode.LogOutputChannel;
  readonly editor: EditorSettings;
}

const CONTROLLER_ID = 'keel.golden';
export const SHOW_TRACE = 'keel.showTrace';
/** Opens the comparison of two runs: a run of the case that passed (A) and the failing one (B). */
export const COMPARE_RUNS = 'keel.compareRuns';

export class GoldenTests implements vscode.Disposable {
  private readonly controller = vscode.tests.createTestController(CONTROLLER_ID, 'Keel Golden Tests');
  private readonly items = new WeakMap<vscode.TestItem, GoldenItem>();
  private readonly disposables: vscode.Disposable[] = [this.controller];
  private watcher: vscode.Disposable | undefined;
  private readonly outcomes = new Map<string, GoldenOutcome>();
  private readonly profiles: Record<GoldenProfile, vscode.TestRunProfile>;
  private discovered: Promise<void> | undefined;

  constructor(private readonly deps: GoldenTestsDeps) {
    this.controller.resolveHandler = async (item) => {
      if (!item) await this.discoverAll();
      else await this.readFile(item.uri ?? vscode.Uri.parse(item.id));
    };
    this.controller.refreshHandler = () => this.discoverAll(true);
    this.profiles = {
      cassette: this.controller.createRunProfile('Cassette', vscode.TestRunProfileKind.Run, (request, token) => this.run(request, token, 'replay'), true),
      live: this.controller.createRunProfile('Live', vscode.TestRunProfileKind.Run, (request, token) => this.run(request, token, 'live'), false),
    };
    this.disposables.push(
      this.profiles.cassette,
      this.profiles.live,
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('keel.goldenFiles')) void this.discoverAll(true);
      }),
      vscode.workspace.onDidOpenTextDocument((document) => {
        if (this.discovered && this.isGoldenFile(document)) void this.readFile(document.uri);
      }),
    );
    this.watch();
  }

  /** Finds the golden files (once, or again when `force`), and reads each. */
  discoverAll(force = false): Promise<void> {
    if (this.discovered && !force) return this.discovered;
    this.discovered = (async () => {
      const uris = await vscode.workspace.findFiles(this.glob(), '**/{node_modules,.git,__cassettes__}/**');
      const wanted = new Set(uris.map((uri) => uri.toString()));
      this.controller.items.forEach((item) => {
        if (!wanted.has(item.id)) this.controller.items.delete(item.id);
      });
      await Promise.all(uris.map((uri) => this.readFile(uri)));
    })();
    return this.discovered;
  }

  /** Runs golden cases the way the Test Explorer does, for the integration tests. */
  async runForTest(ids: readonly string[] | undefined, profile: GoldenProfile): Promise<GoldenTestsSnapshot> {
    await this.discoverAll();
    const include = ids === undefined ? undefined : ids.map((id) => this.find(id)).filter((item): item is vscode.TestItem => item !== undefined);
    const source = new vscode.CancellationTokenSource();
    try {
      await this.run(new vscode.TestRunRequest(include, undefined, this.profiles[profile]), source.token, profile === 'live' ? 'live' : 'replay');
    } finally {
      source.dispose();
    }
    return this.snapshot();
  }

  snapshot(): GoldenTestsSnapshot {
    const files: GoldenTestsSnapshot['files'][number][] = [];
    this.controller.items.forEach((file) => {
      const cases: GoldenTestsSnapshot['files'][number]['cases'][number][] = [];
      file.children.forEach((item) => cases.push({ id: item.id, label: item.label, tags: item.tags.map((tag) => tag.id), line: item.range?.start.line ?? null }));
      const error = file.error === undefined ? null : typeof file.error === 'string' ? file.error : file.error.value;
      files.push({ id: file.id, label: file.label, error, cases });
    });
    return { files, results: Object.fromEntries(this.outcomes) };
  }

  /** The run of a case's last result, to open its trace. */
  lastRunOf(item: vscode.TestItem): string | null {
    return this.outcomes.get(item.id)?.runId ?? null;
  }

  dispose(): void {
    this.watcher?.dispose();
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }

  private glob(): string {
    return this.deps.editor.settings().get<string>('goldenFiles')?.trim() || '**/*.golden.yaml';
  }

  /** Whether a document is a golden file: under a workspace folder, matching the glob that finds them. */
  private isGoldenFile(document: vscode.TextDocument): boolean {
    const folder = vscode.workspace.getWorkspaceFolder(document.uri);
    return folder !== undefined && vscode.languages.match({ scheme: 'file', pattern: new vscode.RelativePattern(folder, this.glob()) }, document) > 0;
  }

  /** Files are read again when they change on disk, appear or go. */
  private watch(): void {
    this.watcher?.dispose();
    const watcher = vscode.workspace.createFileSystemWatcher(this.glob());
    const reread = (uri: vscode.Uri) => {
      if (this.discovered) void this.readFile(uri);
    };
    this.watcher = vscode.Disposable.from(
      watcher,
      watcher.onDidChange(reread),
      watcher.onDidCreate(reread),
      watcher.onDidDelete((uri) => this.controller.items.delete(uri.toString())),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('keel.goldenFiles')) this.watch();
      }),
    );
  }

  /** (Re)reads one golden file in the runtime process: its cases become the file's children, or its error goes on the file. */
  private async readFile(uri: vscode.Uri): Promise<void> {
    const id = uri.toString();
    let file = this.controller.items.get(id);
    if (!file) {
      file = this.controller.createTestItem(id, vscode.workspace.asRelativePath(uri, false), uri);
      this.items.set(file, { kind: 'file', uri });
      this.controller.items.add(file);
    }
    file.busy = true;
    let listed: GoldenFileCases;
    try {
      listed = await this.deps.client.request('listGoldenCases', { file: uri.fsPath });
    } catch (error) {
      file.busy = false;
      file.error = `Keel could not read this file: ${error instanceof Error ? error.message : String(error)}`;
      return;
    }
    file.busy = false;
    if (listed.error) {
      const where = listed.error.line === null ? '' : `line ${listed.error.line}: `;
      file.error = new vscode.MarkdownString(`${where}${listed.error.message}`);
      if (listed.error.line !== null) file.range = new vscode.Range(listed.error.line - 1, 0, listed.error.line - 1, 0);
      file.children.replace([]);
      this.deps.log.warn(`golden file ${uri.fsPath}: ${where}${listed.error.message}`);
      return;
    }
    file.error = undefined;
    file.range = undefined;
    file.children.replace(
      listed.cases.map((goldenCase) => {
        const item = this.controller.createTestItem(`${id}#${goldenCase.name}`, goldenCase.name, uri);
        item.range = toRange(goldenCase.range);
        item.tags = goldenCase.tags.map((tag) => new vscode.TestTag(tag));
        this.items.set(item, { kind: 'case', uri, name: goldenCase.name });
        return item;
      }),
    );
  }

  private find(id: string): vscode.TestItem | undefined {
    const fileId = id.includes('#') ? id.slice(0, id.indexOf('#')) : id;
    const file = this.controller.items.get(fileId);
    return fileId === id ? file : file?.children.get(id);
  }

  private async run(request: vscode.TestRunRequest, token: vscode.CancellationToken, mode: 'replay' | 'live'): Promise<void> {
    const run = this.controller.createTestRun(request, mode === 'live' ? 'Keel golden tests (live)' : 'Keel golden tests', true);
    try {
      await this.discoverAll();
      for (const [file, cases] of this.plan(request)) {
        if (token.isCancellationRequested) {
          for (const item of cases) run.skipped(item);
          continue;
        }
        await this.runFile(run, file, cases, token, mode);
      }
    } finally {
      run.end();
    }
  }

  /** The cases a request asks for, by file: the items it includes (a file means all its cases), less those it excludes. */
  private plan(request: vscode.TestRunRequest): Map<vscode.TestItem, vscode.TestItem[]> {
    const excluded = new Set((request.exclude ?? []).map((item) => item.id));
    const plan = new Map<vscode.TestItem, vscode.TestItem[]>();
    const add = (file: vscode.TestItem, item: vscode.TestItem) => {
      if (excluded.has(file.id) || excluded.has(item.id)) return;
      const list = plan.get(file) ?? [];
      if (!list.includes(item)) list.push(item);
      plan.set(file, list);
    };
    const includeFile = (file: vscode.TestItem) => {
      if (file.error !== undefined && !excluded.has(file.id)) plan.set(file, plan.get(file) ?? []);
      file.children.forEach((item) => add(file, item));
    };
    if (request.include) {
      for (const item of request.include) {
        const data = this.items.get(item);
        if (data?.kind === 'file') includeFile(item);
        else if (item.parent) add(item.parent, item);
      }
    } else {
      this.controller.items.forEach(includeFile);
    }
    return plan;
  }

  private async runFile(run: vscode.TestRun, file: vscode.TestItem, cases: readonly vscode.TestItem[], token: vscode.CancellationToken, mode: 'replay' | 'live'): Promise<void> {
    const uri = file.uri;
    if (!uri) return;
    if (file.error !== undefined) {
      const text = typeof file.error === 'string' ? file.error : file.error.value;
      run.errored(file, new vscode.TestMessage(text));
      return;
    }
    const byName = new Map(cases.map((item) => [this.nameOf(item), item]));
    for (const item of cases) run.enqueued(item);
    const runToken = randomUUID();
    const pending = new Set(cases);
    const subscriptions = [
      this.deps.client.onGoldenEvent(({ token: eventToken, event }) => {
        if (eventToken !== runToken) return;
        if (event.type === 'caseStarted') {
          const item = byName.get(event.caseName);
          if (item) run.started(item);
        } else if (event.type === 'caseFinished') {
          const item = byName.get(event.report.name);
          if (!item) return;
          pending.delete(item);
          this.report(run, item, event.report);
        }
      }),
      token.onCancellationRequested(() => void this.deps.client.request('cancelGolden', { token: runToken }).catch(() => undefined)),
    ];
    try {
      const report = await this.deps.client.request('runGolden', {
        token: runToken,
        file: uri.fsPath,
        cases: [...byName.keys()],
        mode,
      });
      if (report.error) {
        for (const item of pending) this.finish(run, item, 'errored', null, [new vscode.TestMessage(report.error.message)]);
        pending.clear();
      }
      // A case reported in the answer but whose notification was lost still gets its result.
      for (const caseReport of report.cases) {
        const item = byName.get(caseReport.name);
        if (item && pending.delete(item)) this.report(run, item, caseReport);
      }
    } catch (error) {
      const message = new vscode.TestMessage(`The golden run failed: ${error instanceof Error ? error.message : String(error)}`);
      for (const item of pending) this.finish(run, item, 'errored', null, [message]);
      pending.clear();
    } finally {
      for (const subscription of subscriptions) subscription.dispose();
    }
    for (const item of pending) {
      run.skipped(item);
      this.outcomes.set(item.id, { status: 'skipped', runId: null, messages: [] });
    }
  }

  private report(run: vscode.TestRun, item: vscode.TestItem, report: CaseReport): void {
    const failing = report.runs.find((caseRun) => caseRun.status !== 'passed');
    const last = report.runs.at(-1);
    const runId = (failing ?? last)?.runId ?? null;
    const duration = report.runs.reduce((sum, caseRun) => sum + caseRun.durationMs, 0);
    run.appendOutput(`${report.status === 'passed' ? '✓' : '✗'} ${report.name}${runId ? ` · run ${runId}` : ''}\r\n`, undefined, item);
    if (report.status === 'passed') {
      this.finish(run, item, 'passed', runId, [], duration);
      return;
    }
    // What the failing run is compared with: a run of this case that passed, in this report (a flaky case) or the one before.
    const previous = this.outcomes.get(item.id);
    const passedRunId = report.runs.find((caseRun) => caseRun.status === 'passed')?.runId ?? (previous?.status === 'passed' ? previous.runId : null);
    const messages = failing ? this.messages(item, failing, runId, passedRunId) : [];
    this.finish(run, item, report.status === 'error' ? 'errored' : 'failed', runId, messages, duration);
  }

  private finish(run: vscode.TestRun, item: vscode.TestItem, status: GoldenOutcome['status'], runId: string | null, messages: vscode.TestMessage[], duration?: number): void {
    if (status === 'passed') run.passed(item, duration);
    else if (status === 'failed') run.failed(item, messages, duration);
    else if (status === 'errored') run.errored(item, messages, duration);
    this.outcomes.set(item.id, {
      status,
      runId,
      messages: messages.map((message) => ({
        text: typeof message.message === 'string' ? message.message : message.message.value,
        expected: message.expectedOutput ?? null,
        actual: message.actualOutput ?? null,
        line: message.location?.range.start.line ?? null,
      })),
    });
  }

  /**
   * The failed assertions as test messages: a diff where expected and actual are known; the first
   * links, on its first line, to the trace and to a comparison with a run of the case that passed.
   */
  private messages(item: vscode.TestItem, caseRun: CaseRun, runId: string | null, passedRunId: string | null): vscode.TestMessage[] {
    const location = item.uri && item.range ? new vscode.Location(item.uri, item.range) : undefined;
    const messages: vscode.TestMessage[] = [];
    if (caseRun.mismatch) messages.push(new vscode.TestMessage(caseRun.mismatch));
    else if (caseRun.error) messages.push(new vscode.TestMessage(caseRun.error));
    for (const assertion of caseRun.assertions.filter((candidate) => !candidate.passed)) messages.push(assertionMessage(assertion));
    if (messages.length === 0) messages.push(new vscode.TestMessage('The case failed.'));
    if (runId) {
      const first = messages[0] as vscode.TestMessage;
      const text = typeof first.message === 'string' ? escapeMarkdown(first.message) : first.message.value;
      const compare = passedRunId ? ` · [Compare with the run that passed](command:${COMPARE_RUNS}?${encodeURIComponent(JSON.stringify([passedRunId, runId]))})` : '';
      // The peek's header shows a message's first line only: the links go on it, after the failure.
      const [head = '', ...rest] = text.split('\n');
      const trace = `[Show the run's trace](command:${SHOW_TRACE}?${encodeURIComponent(JSON.stringify([runId]))})`;
      const link = new vscode.MarkdownString([`${head} · ${trace}${compare}`, ...rest].join('\n'));
      link.isTrusted = { enabledCommands: [SHOW_TRACE, COMPARE_RUNS] };
      first.message = link;
    }
    for (const message of messages) message.location = location;
    return messages;
  }

  private nameOf(item: vscode.TestItem): string {
    const data = this.items.get(item);
    return data?.kind === 'case' ? data.name : item.label;
  }
}

function assertionMessage(assertion: AssertionResult): vscode.TestMessage {
  const text = `${assertion.kind}: ${assertion.message}`;
  return assertion.expected !== undefined && assertion.actual !== undefined ? vscode.TestMessage.diff(text, assertion.expected, assertion.actual) : new vscode.TestMessage(text);
}

function toRange(range: TextRange): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
