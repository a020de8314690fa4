import { canonicalJson, sha256 } from '../hash/canonicalJson';
import type { RunEvent } from '../agent/events';
import { describeError } from '../errors';
import { formatDuration, truncate } from '../../shared/format';
import type { ApprovalRecord, CheckpointStore, RunRecord } from '../store/checkpointStore';
import type { DetectedFlag } from '../trace/detectors';
import { targetsOf, type AlertEvent, type AlertRule } from './alertConfig';
import { AlertDispatcher, type DispatcherOptions } from './dispatcher';
import { alertsOf, type AlertOutbox, type AlertRecord, type AlertSeverity, type NewAlert } from './outbox';
import type { ResolvedAlerts } from './resolveAlerts';

/**
 * Turns what happens into alerts, by the rules of keel.config.ts: run events of this process
 * (budget warnings, model steps that move spend or overran), runs that stopped (failed, stopped at
 * a budget, flagged by the detectors), circuits that open, and what the store shows whichever
 * process did it (approvals waiting or escalated, spend within an hour or a day). Every alert goes
 * through the outbox; the dispatcher delivers it.
 */

/** What an alert says, before the rules pick its recipients. */
export interface AlertDraft {
  readonly key: string;
  /** Defaults to the key: no other alert counts as the same. */
  readonly dedupKey?: string;
  readonly severity: AlertSeverity;
  readonly title: string;
  readonly body: string;
  readonly runId?: string | null;
  readonly facts?: Readonly<Record<string, unknown>>;
  /** Only rules for this agent (or for any agent) apply. */
  readonly agent?: string;
  /** Flags the alert is about, for the rules that choose by kind and severity. */
  readonly flags?: readonly DetectedFlag[];
}

export interface AlertServiceOptions extends Omit<DispatcherOptions, 'channels'> {
  readonly config: () => ResolvedAlerts;
  /** Applied to every title and body before it is stored: run errors and answers may hold secrets. */
  readonly redact?: (text: string) => string;
  /** The least time between two spend checks started by run events. */
  readonly spendCheckMs?: number;
}

export class AlertService {
  readonly dispatcher: AlertDispatcher;
  private readonly outbox: AlertOutbox | undefined;
  private readonly now: () => number;
  /** Work started by events, in order; `idle()` waits for it. */
  private queue: Promise<void> = Promise.resolve();
  private lastSpendCheck = 0;

  constructor(
    private readonly store: CheckpointStore,
    private readonly options: AlertServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
    let outbox: AlertOutbox | undefined;
    try {
      outbox = alertsOf(store);
    } catch {
      // A store without an outbox (one a caller built) raises no alerts.
    }
    this.outbox = outbox;
    this.dispatcher = new AlertDispatcher(outbox ?? nullOutbox, { ...options, channels: () => options.config().channels });
  }

  private get rules(): readonly AlertRule[] {
    return this.options.config().rules;
  }

  private has(event: AlertEvent): boolean {
    return this.rules.some((rule) => rule.on === event);
  }

  /**
   * Records an alert for the rules that take `event` (and for `extraTargets`, such as the address an
   * escalation names), then starts its delivery. Undefined when no rule takes it, or it was raised
   * already (its key) or lately (its dedup key).
   */
  async raise(event: AlertEvent, draft: AlertDraft, extraTargets: readonly string[] = []): Promise<AlertRecord | undefined> {
    if (!this.outbox) return undefined;
    const targets = [...new Set([...extraTargets, ...this.rules.filter((rule) => applies(rule, event, draft)).flatMap((rule) => targetsOf(rule.to))])];
    if (targets.length === 0) return undefined;
    const redact = this.options.redact ?? ((text: string) => text);
    const alert: NewAlert = {
      key: draft.key,
      dedupKey: draft.dedupKey ?? draft.key,
      event,
      severity: draft.severity,
      title: redact(draft.title),
      body: redact(draft.body),
      runId: draft.runId ?? null,
      facts: draft.facts ?? {},
      at: this.now(),
    };
    const recorded = await this.outbox.enqueue(alert, targets, this.options.config().dedupWindowMs);
    if (recorded) void this.dispatcher.deliverDue().catch((error: unknown) => this.options.log?.(`could not deliver alerts: ${describeError(error)}`));
    return recorded;
  }

  /** An alert to every channel, to check they work (`keel alerts test`). */
  async test(at: number): Promise<AlertRecord | undefined> {
    if (!this.outbox) return undefined;
    const channels = Object.keys(this.options.config().channels);
    if (channels.length === 0) return undefined;
    const key = `test:${at}:${sha256(String(Math.random())).slice(0, 8)}`;
    const alert: NewAlert = {
      key,
      dedupKey: key,
      event: 'test',
      severity: 'info',
      title: 'Keel test alert',
      body: 'This is a test of the alert channels in keel.config.ts (npx keel alerts test). Nothing went wrong.',
      runId: null,
      facts: {},
      at,
    };
    return this.outbox.enqueue(alert, channels, 0);
  }

  /** What a run event of this process may raise; the work runs in order in the background (see idle()). */
  observe(event: RunEvent): void {
    if (!this.outbox || this.rules.length === 0) return;
    switch (event.type) {
      case 'budget_warning':
        if (this.has('budget_warning')) this.later(() => this.budgetWarning(event));
        return;
      case 'step_finished':
        if (event.step.kind !== 'model' || event.step.status !== 'completed') return;
        if (this.has('provider_overrun')) this.later(() => this.overrun(event.step.runId, event.step.seq));
        if (this.has('spend') && this.now() - this.lastSpendCheck >= (this.options.spendCheckMs ?? 1_000)) {
          this.lastSpendCheck = this.now();
          this.later(() => this.checkSpend());
        }
        return;
      default:
        return;
    }
  }

  /** What a run that stopped raises: its failure, its budget stop, its detectors' flags; and the spend it added. */
  async runStopped(run: RunRecord, flags: () => Promise<readonly DetectedFlag[]>): Promise<void> {
    if (!this.outbox || this.rules.length === 0) return;
    const tree = run.parentRunId ?? run.id;
    const show = `Details: npx keel show ${run.id}`;
    if (run.state === 'failed') {
      await this.raise('run_failed', {
        key: `run_failed:${run.id}`,
        dedupKey: `run_failed:${tree}`,
        severity: 'error',
        title: `Run ${run.id} (${run.agent}) failed`,
        body: `${truncate(run.error ?? 'no error recorded', 600)}\n${show}`,
        runId: run.id,
        agent: run.agent,
        facts: { agent: run.agent, model: run.model, error: run.error, parentRunId: run.parentRunId },
      });
    }
    if (run.state === 'budget_exceeded') {
      await this.raise('budget_exceeded', {
        key: `budget_exceeded:${run.id}`,
        dedupKey: `budget_exceeded:${tree}`,
        severity: 'error',
        title: `Run ${run.id} (${run.agent}) stopped at a budget limit`,
        body: `${truncate(run.error ?? '', 600)}\nIt spent $${run.costUsd.toFixed(4)}. ${show}`,
        runId: run.id,
        agent: run.agent,
        facts: { agent: run.agent, model: run.model, error: run.error, costUsd: run.costUsd, usage: run.usage },
      });
    }
    if (this.has('flag') && ['completed', 'failed', 'budget_exceeded'].includes(run.state)) {
      const found = await flags();
      if (found.length > 0) {
        const kinds = [...new Set(found.map((flag) => flag.kind))];
        await this.raise('flag', {
          key: `flag:${run.id}:${sha256(canonicalJson(found.map((flag) => [flag.kind, flag.seq]))).slice(0, 12)}`,
          severity: found.some((flag) => flag.severity === 'error') ? 'error' : 'warning',
          title: `Run ${run.id} (${run.agent}) ${run.state === 'completed' ? 'completed' : 'ended'} with ${found.length} flag${found.length === 1 ? '' : 's'}: ${kinds.join(', ')}`,
          body: `${found.map((flag) => `- ${flag.seq === null ? 'run' : `step ${flag.seq}`} ${flag.kind}: ${truncate(flag.message, 300)}`).join('\n')}\n${show}`,
          runId: run.id,
          agent: run.agent,
          flags: found,
          facts: { agent: run.agent, state: run.state, flags: found },
        });
      }
    }
    if (this.has('spend')) await this.checkSpend();
  }

  /** A circuit that opened in this process. */
  circuitOpened(opened: { readonly name: string; readonly reason: string; readonly retryAt: number }): void {
    if (!this.has('circuit_open')) return;
    const at = this.now();
    this.later(async () => {
      await this.raise('circuit_open', {
        key: `circuit_open:${opened.name}:${at}:${sha256(String(Math.random())).slice(0, 6)}`,
        dedupKey: `circuit_open:${opened.name}`,
        severity: 'error',
        title: `Circuit open: ${opened.name}`,
        body: `Keel stopped calling ${opened.name} after ${opened.reason}; it lets a call through again at ${new Date(opened.retryAt).toISOString()}.`,
        facts: { breaker: opened.name, reason: opened.reason, retryAt: new Date(opened.retryAt).toISOString() },
      });
    });
  }

  /**
   * What the store shows, whichever process did it: approvals that waited too long or were
   * escalated, and spend over its thresholds.
   */
  async scan(): Promise<void> {
    if (!this.outbox) return;
    const now = this.now();
    const pending = await this.store.listApprovals({ status: 'pending' });
    for (const approval of pending) {
      if (approval.escalatedAt !== null) await this.escalated(approval);
      for (const rule of this.rules) {
        if (rule.on !== 'approval_waiting' || now - approval.requestedAt < rule.afterMs || (rule.agent !== undefined && rule.agent !== approval.agent)) continue;
        await this.raise('approval_waiting', {
          key: `approval_waiting:${approval.id}:${rule.afterMs}`,
          severity: 'warning',
          title: `Approval ${approval.id} has waited ${formatDuration(now - approval.requestedAt)} for a decision`,
          body: approvalBody(approval),
          runId: approval.runId,
          agent: approval.agent,
          facts: approvalFacts(approval),
        });
      }
    }
    if (this.has('spend')) await this.checkSpend();
  }

  /** Resolves when the work events started is done. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Waits for the work events started, then delivers what is due for at most `deadlineMs`: how many deliveries were sent, and how many alerts are still pending. */
  async flush(deadlineMs: number): Promise<{ readonly sent: number; readonly pending: number }> {
    if (!this.outbox) return { sent: 0, pending: 0 };
    await this.idle();
    await this.scan();
    const sent = await this.dispatcher.drain(deadlineMs);
    return { sent, pending: (await this.outbox.list({ status: 'pending', limit: 1000 })).length };
  }

  private later(work: () => Promise<unknown>): void {
    this.queue = this.queue.then(work).then(
      () => undefined,
      (error: unknown) => this.options.log?.(`could not raise an alert: ${describeError(error)}`),
    );
  }

  private async budgetWarning(event: Extract<RunEvent, { type: 'budget_warning' }>): Promise<void> {
    const run = await this.store.getRun(event.runId);
    const shared = event.budgetId.startsWith('pool:');
    const key = `budget_warning:${event.runId}:${event.budgetId}:${event.dimension}`;
    const amount = (value: number) => (event.dimension === 'usd' ? `$${value.toFixed(4)}` : `${Math.round(value)} ${event.dimension === 'steps' ? 'steps' : 'tokens'}`);
    const percent = event.limit === 0 ? 100 : Math.round((event.spent / event.limit) * 100);
    await this.raise('budget_warning', {
      key,
      dedupKey: shared ? `budget_warning:${event.budgetId}:${event.dimension}` : key,
      severity: 'warning',
      title: `Budget warning: ${shared ? event.budgetId : `run ${event.runId}`} has used ${percent}% of its ${event.dimension} limit`,
      body: `${amount(event.spent)} of ${amount(event.limit)}${run ? ` (run ${run.id}, agent ${run.agent})` : ''}.\nDetails: npx keel show ${event.runId}`,
      runId: event.runId,
      ...(run ? { agent: run.agent } : {}),
      facts: { ...event },
    });
  }

  private async overrun(runId: string, seq: number): Promise<void> {
    const over = (await this.store.listReservations({ runId })).filter(
      (reservation) => reservation.seq === seq && reservation.actual !== null && reservation.actual.outputTokens > reservation.amounts.outputTokens,
    );
    if (over.length === 0) return;
    const run = await this.store.getRun(runId);
    for (const reservation of over) {
      await this.raise('provider_overrun', {
        key: `provider_overrun:${reservation.id}`,
        dedupKey: `provider_overrun:${reservation.model}`,
        severity: 'warning',
        title: `Provider overrun: ${reservation.model} returned ${reservation.actual?.outputTokens ?? 0} output tokens, more than the ${reservation.amounts.outputTokens} it was allowed`,
        body: `Run ${runId}${run ? ` (${run.agent})` : ''}, step ${seq}: the provider ignored the output limit, so the call cost more than its reservation.\nDetails: npx keel show ${runId}`,
        runId,
        ...(run ? { agent: run.agent } : {}),
        facts: { reservation },
      });
    }
  }

  /** Each spend rule against the store's spend in the current UTC hour or day: one alert per rule and window. */
  private async checkSpend(): Promise<void> {
    if (!this.outbox) return;
    const now = this.now();
    for (const rule of this.rules) {
      if (rule.on !== 'spend') continue;
      const since = windowStart(now, rule.per);
      const scope = rule.pool !== undefined ? { pool: rule.pool } : rule.model !== undefined ? { model: rule.model } : rule.agent !== undefined ? { agent: rule.agent } : {};
      const spent = await this.outbox.spend(scope, since, now + 1);
      if (spent < rule.usd) continue;
      const what = rule.pool !== undefined ? `pool ${rule.pool}` : rule.model !== undefined ? `model ${rule.model}` : rule.agent !== undefined ? `agent ${rule.agent}` : 'all agents';
      const window = new Date(since).toISOString().slice(0, rule.per === 'hour' ? 13 : 10);
      await this.raise('spend', {
        key: `spend:${sha256(canonicalJson(rule)).slice(0, 12)}:${window}`,
        severity: 'warning',
        title: `Spend of ${what} reached $${spent.toFixed(2)} this ${rule.per} (threshold $${rule.usd})`,
        body: `Since ${new Date(since).toISOString()} (UTC), counted from the run database, across every process that records there.`,
        facts: { scope, per: rule.per, since: new Date(since).toISOString(), spentUsd: spent, thresholdUsd: rule.usd },
      });
    }
  }

  private async escalated(approval: ApprovalRecord): Promise<void> {
    await this.raise(
      'escalation',
      {
        key: `escalation:${approval.id}`,
        severity: 'warning',
        title: `Escalated to ${approval.escalateTo ?? 'you'}: approval ${approval.id} (${approval.tool}) passed its deadline undecided`,
        body: `${approvalBody(approval)}${approval.deadline === null ? '' : `\nIt is rejected at ${new Date(approval.deadline).toISOString()} unless someone decides it first.`}`,
        runId: approval.runId,
        agent: approval.agent,
        facts: approvalFacts(approval),
      },
      approval.escalateTo === null ? [] : [approval.escalateTo],
    );
  }
}

function applies(rule: AlertRule, event: AlertEvent, draft: AlertDraft): boolean {
  if (rule.on !== event) return false;
  if (rule.agent !== undefined && rule.agent !== draft.agent && rule.on !== 'spend') return false;
  if (rule.on === 'flag') {
    const flags = (draft.flags ?? []).filter(
      (flag) => (rule.kinds === undefined || rule.kinds.includes(flag.kind)) && (rule.severity !== 'error' || flag.severity === 'error'),
    );
    return flags.length > 0;
  }
  return true;
}

/** What an approval asks, and the commands that decide it. */
function approvalBody(approval: ApprovalRecord): string {
  return [
    `${approval.agent} wants to call ${approval.tool}: ${approval.summary}`,
    `Why it asks: ${approval.reason}`,
    `Run ${approval.runId}, asked at ${new Date(approval.requestedAt).toISOString()}.`,
    `Decide it: npx keel approve ${approval.id}   or   npx keel reject ${approval.id} --reason "<why>"`,
  ].join('\n');
}

function approvalFacts(approval: ApprovalRecord): Record<string, unknown> {
  return {
    approvalId: approval.id,
    agent: approval.agent,
    tool: approval.tool,
    summary: approval.summary,
    reason: approval.reason,
    requestedAt: new Date(approval.requestedAt).toISOString(),
    deadline: approval.deadline === null ? null : new Date(approval.deadline).toISOString(),
    escalateTo: approval.escalateTo,
    approve: `npx keel approve ${approval.id}`,
    reject: `npx keel reject ${approval.id} --reason "<why>"`,
  };
}

function windowStart(now: number, per: 'hour' | 'day'): number {
  const size = per === 'hour' ? 3_600_000 : 86_400_000;
  return Math.floor(now / size) * size;
}

/** The outbox of a store that keeps none: nothing is ever due. */
const nullOutbox: AlertOutbox = {
  enqueue: () => Promise.resolve(undefined),
  claim: () => Promise.resolve([]),
  settle: () => Promise.resolve(false),
  getAlert: () => Promise.resolve(undefined),
  list: () => Promise.resolve([]),
  spend: () => Promise.resolve(0),
};
