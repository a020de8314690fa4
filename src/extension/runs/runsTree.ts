import * as vscode from 'vscode';
import type { RunEvent } from '../../protocol/events';
import type { Approval, Run, RunState, Step, Thread } from '../../protocol/records';
import { formatAgo, truncate } from '../../shared/format';
import { RUN_STATE_LABELS, describeStep, stepOutcome, totalTokens } from '../../shared/runText';
import { approvalMessage, approvalRow, decideCommand } from '../approvals/approvalText';
import { threadItem } from '../memory/memoryTree';
import type { RuntimeClient } from '../client/runtimeClient';
import { runDescription } from '../ui/runStatus';
import type { RunRow } from '../ui/runTarget';
import { matchesRun, type RunFilter } from './runFilter';

/** A row of the Runs view: one that names a run, the Threads group, or a thread in it. */
export type RunsTreeNode = RunRow | { readonly kind: 'threads' } | { readonly kind: 'thread'; readonly thread: Thread };

/** What the view shows of a thread, as plain data (for tests). */
export interface ThreadRowSnapshot {
  readonly id: string;
  readonly label: string;
  readonly description: string;
  readonly contextValue: string;
  /** Its runs, oldest first: run id, label and description. */
  readonly runs: readonly { runId: string; label: string; description: string }[];
}

/** The pending approvals the view shows under their runs, with their decisions as inline buttons. */
export interface ApprovalSource {
  forRun(runId: string): readonly Approval[];
  readonly onDidChange: vscode.Event<unknown>;
}

const STATE_ICONS: Record<RunState, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('sync~spin'),
  interrupted: new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('list.warningForeground')),
  waiting_approval: new vscode.ThemeIcon('question', new vscode.ThemeColor('list.warningForeground')),
  completed: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  cancelled: new vscode.ThemeIcon('circle-slash'),
  budget_exceeded: new vscode.ThemeIcon('credit-card', new vscode.ThemeColor('testing.iconFailed')),
};

/** A run that completed but that the detectors flagged (an ignored tool error, a required tool never called…): not a plain pass. */
const FLAGGED_ICON = new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));

/** Runs whose trace the detectors read: those that ended. */
const FLAGGABLE: ReadonlySet<RunState> = new Set(['completed', 'failed', 'budget_exceeded']);

const THREADS_GROUP: RunsTreeNode = { kind: 'threads' };

/** How often the rows' `5 min ago` is brought up to date. */
const AGE_REFRESH_MS = 30_000;

/**
 * The Runs view: every run in the workspace database, newest first, live while they go, each
 * sub-agent run under the run that started it; above them, when there are any, the Threads group:
 * each thread with its runs, oldest first. A filter (agent, state, flagged, words) narrows the
 * top-level runs; a run whose sub-agent run matches stays, so the match can be found under it.
 */
export class RunsTree implements vscode.TreeDataProvider<RunsTreeNode>, vscode.Disposable {
  private runs: Run[] = [];
  private threads: Thread[] = [];
  private readonly nodes = new Map<string, RunsTreeNode>();
  private readonly steps = new Map<string, Step[]>();
  /** How many flags the detectors found on each ended run that has any. */
  private readonly flags = new Map<string, number>();
  /** The runs of the threads expanded, which may be older than the runs listed. */
  private readonly threadRuns = new Map<string, Run>();
  private readonly changed = new vscode.EventEmitter<RunsTreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private ticker: NodeJS.Timeout | undefined;
  private readonly ages = setInterval(() => this.changed.fire(undefined), AGE_REFRESH_MS);
  private loaded: Promise<void> | undefined;
  private filter: RunFilter | undefined;

  constructor(
    private readonly client: RuntimeClient,
    private readonly approvals: ApprovalSource,
  ) {
    this.disposables.push(
      client.onRunEvent((event) => this.apply(event)),
      approvals.onDidChange(() => this.changed.fire(undefined)),
    );
  }

  /** Re-reads the runs from the database (runs started elsewhere, such as the CLI, appear). */
  refresh(): Promise<void> {
    this.loaded = Promise.all([this.client.request('listRuns', { limit: 200 }), this.client.request('listThreads', { limit: 100 })]).then(async ([runs, threads]) => {
      this.runs = runs;
      this.threads = threads;
      this.steps.clear();
      await this.countFlags(runs.filter((run) => FLAGGABLE.has(run.state)).map((run) => run.id));
      this.changed.fire(undefined);
      this.tick();
    });
    return this.loaded;
  }

  /** What the view shows at the top level, as plain data (for tests and the status of the view). */
  async snapshot(): Promise<
    readonly {
      runId: string;
      label: string;
      description: string;
      state: RunState;
      tooltip: string;
      approvals: readonly { id: string; label: string; description: string; contextValue: string }[];
    }[]
  > {
    await (this.loaded ?? this.refresh());
    return Promise.all(
      this.topLevel().map(async (run) => ({
        runId: run.id,
        label: run.agent,
        description: this.describe(run),
        state: run.state,
        tooltip: (await this.tooltip(run)).value,
        approvals: this.approvals.forRun(run.id).map((approval) => {
          const item = approvalItem(approval);
          return { id: approval.id, label: String(item.label), description: String(item.description), contextValue: item.contextValue ?? '' };
        }),
      })),
    );
  }

  /** The Threads group, fully expanded. */
  async threadsSnapshot(): Promise<readonly ThreadRowSnapshot[]> {
    await (this.loaded ?? this.refresh());
    return Promise.all(
      this.threads.map(async (thread) => {
        const item = threadItem(thread);
        const runs = await this.getChildren({ kind: 'thread', thread });
        return {
          id: thread.id,
          label: String(item.label),
          description: String(item.description),
          contextValue: item.contextValue ?? '',
          runs: runs.map((node) => {
            const runItem = this.getTreeItem(node);
            return { runId: node.kind === 'run' ? node.runId : '', label: String(runItem.label), description: String(runItem.description ?? '') };
          }),
        };
      }),
    );
  }

  /** Narrows the view to the runs `filter` keeps; undefined shows every run again. Resolves with how many top-level runs it shows, of how many. */
  async setFilter(filter: RunFilter | undefined): Promise<{ readonly shown: number; readonly of: number }> {
    this.filter = filter;
    await (this.loaded ?? this.refresh());
    this.changed.fire(undefined);
    return { shown: this.topLevel().length, of: this.runs.filter((run) => !this.hasListedParent(run)).length };
  }

  /** The sub-agent runs of a run, with their rows as the view shows them (for tests). */
  async subAgentsSnapshot(runId: string): Promise<readonly { runId: string; label: string; description: string }[]> {
    const children = await this.getChildren(this.runNode(runId));
    return children.flatMap((node) => {
      if (node.kind !== 'run') return [];
      const item = this.getTreeItem(node);
      return [{ runId: node.runId, label: String(item.label), description: String(item.description ?? '') }];
    });
  }

  /** The step rows of a run as the view shows them, with the command a click runs (for tests). */
  async stepsSnapshot(runId: string): Promise<readonly { label: string; description: string; command: string; arguments: readonly unknown[] }[]> {
    const children = await this.getChildren(this.runNode(runId));
    return children.flatMap((node) => {
      if (node.kind !== 'step') return [];
      const item = this.getTreeItem(node);
      return [{ label: String(item.label), description: String(item.description ?? ''), command: item.command?.command ?? '', arguments: item.command?.arguments ?? [] }];
    });
  }

  getRun(runId: string): Run | undefined {
    return this.runs.find((run) => run.id === runId) ?? this.threadRuns.get(runId);
  }

  async getChildren(node?: RunsTreeNode): Promise<RunsTreeNode[]> {
    if (!node) {
      await (this.loaded ?? this.refresh());
      return [...(this.threads.length > 0 && !this.filter ? [THREADS_GROUP] : []), ...this.topLevel().map((run) => this.runNode(run.id))];
    }
    if (node.kind === 'threads') return this.threads.map((thread): RunsTreeNode => ({ kind: 'thread', thread }));
    if (node.kind === 'thread') {
      const { runs } = await this.client.request('getThread', { threadId: node.thread.id });
      for (const run of runs) this.threadRuns.set(run.id, run);
      return runs.map((run): RunsTreeNode => ({ kind: 'run', runId: run.id, inThread: node.thread.id }));
    }
    if (node.kind !== 'run') return [];
    const approvals = this.approvals.forRun(node.runId).map((approval): RunsTreeNode => ({ kind: 'approval', approval }));
    const subAgents = this.runs
      .filter((run) => run.parentRunId === node.runId)
      .sort((a, b) => (a.parentSeq ?? 0) - (b.parentSeq ?? 0) || a.createdAt - b.createdAt)
      .map((run) => this.runNode(run.id));
    let steps = this.steps.get(node.runId);
    if (!steps) {
      steps = (await this.client.request('getRun', { runId: node.runId })).steps;
      this.steps.set(node.runId, steps);
    }
    return [...approvals, ...subAgents, ...steps.map((step): RunsTreeNode => ({ kind: 'step', step }))];
  }

  getTreeItem(node: RunsTreeNode): vscode.TreeItem {
    if (node.kind === 'step') return stepItem(node.step);
    if (node.kind === 'approval') return approvalItem(node.approval);
    if (node.kind === 'threads') return threadsItem(this.threads.length);
    if (node.kind === 'thread') return threadItem(node.thread);
    const run = this.getRun(node.runId);
    if (!run) return new vscode.TreeItem(node.runId);
    const item = new vscode.TreeItem(node.inThread ? truncate(run.input, 60) : run.agent, vscode.TreeItemCollapsibleState.Collapsed);
    item.id = node.inThread ? `${node.inThread}/${run.id}` : run.id;
    item.description = this.describe(run, node.inThread !== undefined);
    const flagged = run.state === 'completed' && (this.flags.get(run.id) ?? 0) > 0;
    item.iconPath = flagged ? FLAGGED_ICON : STATE_ICONS[run.state];
    item.contextValue = `run.${run.state}`;
    // A waiting run's tooltip names its pending decisions, which resolveTreeItem fetches on hover.
    if (run.state !== 'waiting_approval') item.tooltip = runTooltip(run, []);
    item.command = { command: 'keel.showRun', title: 'Show Run', arguments: [run.id] };
    return item;
  }

  async resolveTreeItem(item: vscode.TreeItem, node: RunsTreeNode): Promise<vscode.TreeItem> {
    const run = node.kind === 'run' ? this.getRun(node.runId) : undefined;
    if (run && item.tooltip === undefined) item.tooltip = await this.tooltip(run);
    return item;
  }

  dispose(): void {
    if (this.ticker) clearInterval(this.ticker);
    clearInterval(this.ages);
    for (const disposable of this.disposables) disposable.dispose();
  }

  private async tooltip(run: Run): Promise<vscode.MarkdownString> {
    if (run.state !== 'waiting_approval') return runTooltip(run, []);
    const approvals = await this.client.request('listApprovals', { runId: run.id, status: 'pending' }).catch(() => []);
    return runTooltip(run, approvals);
  }

  /** A run's row after its label, with its flags when the detectors found any; in a thread the label is its input already. */
  private describe(run: Run, inThread = false): string {
    const now = Date.now();
    const row = inThread ? `${runDescription(run, now)} · ${formatAgo(now - run.createdAt)}` : rowDescription(run, now);
    const flags = this.flags.get(run.id) ?? 0;
    return flags === 0 ? row : `${row} · ⚑ ${flags} flag${flags === 1 ? '' : 's'}`;
  }

  /** Reads how many flags the detectors find on these runs; a run whose trace cannot be read shows none. */
  private async countFlags(runIds: readonly string[]): Promise<void> {
    if (runIds.length === 0) return;
    const { counts } = await this.client.request('getFlagCounts', { runIds }).catch(() => ({ counts: {} as Record<string, number> }));
    for (const runId of runIds) {
      const count = counts[runId] ?? 0;
      if (count > 0) this.flags.set(runId, count);
      else this.flags.delete(runId);
    }
  }

  /** The runs listed at the top: those not under a listed parent, that the filter keeps (or that hold a sub-agent run it keeps). */
  private topLevel(): Run[] {
    const roots = this.runs.filter((run) => !this.hasListedParent(run));
    const filter = this.filter;
    if (!filter) return roots;
    const keeps = (run: Run): boolean =>
      matchesRun(filter, run, this.flags.get(run.id) ?? 0) || this.runs.some((child) => child.parentRunId === run.id && keeps(child));
    return roots.filter(keeps);
  }

  private hasListedParent(run: Run): boolean {
    return run.parentRunId !== null && this.runs.some((candidate) => candidate.id === run.parentRunId);
  }

  private runNode(runId: string): RunsTreeNode {
    let node = this.nodes.get(runId);
    if (!node) {
      node = { kind: 'run', runId };
      this.nodes.set(runId, node);
    }
    return node;
  }

  private apply(event: RunEvent): void {
    switch (event.type) {
      case 'run_started':
      case 'run_finished':
        this.upsert(event.run);
        if (event.run.threadId) void this.refreshThreads();
        if (event.type === 'run_finished' && FLAGGABLE.has(event.run.state)) {
          const runId = event.run.id;
          void this.countFlags([runId]).then(() => this.changed.fire(this.runNode(runId)));
        }
        break;
      case 'step_started':
      case 'step_finished': {
        const steps = this.steps.get(event.step.runId);
        if (steps) {
          const index = steps.findIndex((step) => step.seq === event.step.seq);
          if (index >= 0) steps[index] = event.step;
          else steps.push(event.step);
        }
        const run = this.getRun(event.step.runId);
        if (run && event.type === 'step_finished') {
          // Steps finish in order, so a finished step's number is the count of finished steps.
          this.upsert({ ...run, stepCount: Math.max(run.stepCount, event.step.seq), updatedAt: event.step.endedAt ?? run.updatedAt });
        } else {
          this.changed.fire(this.runNode(event.step.runId));
        }
        break;
      }
      case 'model_delta':
      case 'step_retry':
      case 'tool_log':
      case 'approval_requested':
      case 'budget_warning':
        break;
    }
  }

  private upsert(run: Run): void {
    const index = this.runs.findIndex((candidate) => candidate.id === run.id);
    if (index >= 0) {
      this.runs[index] = run;
      this.changed.fire(this.runNode(run.id));
    } else {
      this.runs.unshift(run);
      this.changed.fire(undefined);
    }
    this.tick();
  }

  /** A run started or ended in a thread: its count and order in the Threads group change. */
  private async refreshThreads(): Promise<void> {
    this.threads = await this.client.request('listThreads', { limit: 100 }).catch(() => this.threads);
    this.changed.fire(undefined);
  }

  /** While a run is going, its duration in the view counts up. */
  private tick(): void {
    const running = this.runs.some((run) => run.state === 'running');
    if (running && !this.ticker) {
      this.ticker = setInterval(() => {
        for (const run of this.runs) if (run.state === 'running') this.changed.fire(this.runNode(run.id));
      }, 1000);
    } else if (!running && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }
}

function threadsItem(count: number): vscode.TreeItem {
  const item = new vscode.TreeItem('Threads', vscode.TreeItemCollapsibleState.Collapsed);
  item.id = 'threads';
  item.description = `${count}`;
  item.iconPath = new vscode.ThemeIcon('comment-discussion');
  item.tooltip = 'Conversations that go on across runs: each thread with its runs, oldest first. Continue Thread… on a run or a thread starts its next run.';
  item.contextValue = 'threads';
  return item;
}

/** A top-level run's row after its agent's name: `"Paris in May…" · completed · 5 steps · 1.5 s · 3 min ago`. */
function rowDescription(run: Run, now: number): string {
  return `${JSON.stringify(truncate(run.input, 40))} · ${runDescription(run, now)} · ${formatAgo(now - run.createdAt)}`;
}

function stepItem(step: Step): vscode.TreeItem {
  const item = new vscode.TreeItem(`${step.seq} · ${step.kind === 'model' ? 'model' : step.name}`);
  // The label names the tool already; the description says what it did.
  item.description = stepOutcome(step, 80);
  item.iconPath =
    step.status === 'failed'
      ? new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'))
      : step.status === 'in_progress'
        ? new vscode.ThemeIcon('sync~spin')
        : new vscode.ThemeIcon(step.kind === 'model' ? 'sparkle' : 'tools');
  item.tooltip = describeStep(step, 2000);
  // A string tooltip would be read instead of the row (it lacks the step's number).
  item.accessibilityInformation = { label: `${String(item.label)} ${item.description}` };
  item.contextValue = `step.${step.kind}`;
  item.command = { command: 'keel.showRun', title: 'Show Step', arguments: [step.runId, step.seq] };
  return item;
}

/** `approvals`: the run's pending decisions, when it waits for one. */
function runTooltip(run: Run, approvals: readonly Approval[]): vscode.MarkdownString {
  const text = new vscode.MarkdownString();
  text.appendMarkdown(`**${run.agent}** · ${RUN_STATE_LABELS[run.state]} · started ${new Date(run.createdAt).toLocaleString()}\n\n`);
  if (run.parentRunId !== null) text.appendMarkdown(`Sub-agent run of \`${run.parentRunId}\`, started by its step ${run.parentSeq ?? '?'}.\n\n`);
  text.appendMarkdown(`Input: ${truncate(run.input, 300)}\n\n`);
  if (run.result) text.appendMarkdown(`Result: ${truncate(run.result, 300)}\n\n`);
  if (run.error) text.appendMarkdown(`${ERROR_LABELS[run.state]}: ${truncate(run.error, 500)}\n\n`);
  if (run.state === 'interrupted') text.appendMarkdown('Resume it with the **Resume Run** button on its row.\n\n');
  if (run.state === 'waiting_approval' && approvals.length === 0) {
    text.appendMarkdown('Its decision is made: resume it with **Resume Run** in its context menu.\n\n');
  }
  for (const approval of approvals) {
    text.appendMarkdown(`Decision \`${approval.id}\` on \`${approval.tool}(${truncate(JSON.stringify(approval.args) ?? '', 120)})\`. `);
    text.appendMarkdown('Decide with the buttons on its row under this run, or in a terminal in this workspace; Keel then resumes the run:\n\n');
    text.appendCodeblock(decideCommand(approval), 'sh');
    text.appendMarkdown(
      approval.kind === 'policy'
        ? '\n`--args edited.json` approves other arguments instead; the model reads the reason of a rejection.\n\n'
        : '\n`--retry` calls the tool again with the same idempotency key, `--done` records the result it had, `--fail` fails the call.\n\n',
    );
  }
  text.appendMarkdown(`${run.model} · ${totalTokens(run)} tokens · \`${run.id}\``);
  return text;
}

/** What a run's `error` is, by the state it is in. */
const ERROR_LABELS: Record<RunState, string> = {
  running: 'Error',
  interrupted: 'Interrupted',
  waiting_approval: 'Waiting',
  completed: 'Error',
  failed: 'Error',
  cancelled: 'Cancelled',
  budget_exceeded: 'Stopped',
};

function approvalItem(approval: Approval): vscode.TreeItem {
  const { label, description } = approvalRow(approval);
  const item = new vscode.TreeItem(label);
  item.id = approval.id;
  item.description = description;
  item.iconPath = new vscode.ThemeIcon('bell', new vscode.ThemeColor('list.warningForeground'));
  item.contextValue = `approval.${approval.kind}`;
  const tooltip = new vscode.MarkdownString();
  tooltip.appendMarkdown(`${approvalMessage(approval, Date.now()).replace(/^Keel · /, '')}\n\n`);
  tooltip.appendCodeblock(JSON.stringify(approval.args, null, 2) ?? '', 'json');
  tooltip.appendMarkdown('\nClick to review; or in a terminal:\n\n');
  tooltip.appendCodeblock(decideCommand(approval), 'sh');
  item.tooltip = tooltip;
  item.command = { command: 'keel.reviewApproval', title: 'Review…', arguments: [approval.id] };
  return item;
}
