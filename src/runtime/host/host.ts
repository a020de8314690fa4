import type { RunEvent, RunEventListener } from '../agent/events';
import { PROCESS_OWNER } from '../agent/owner';
import { AlertService } from '../alerts/alertService';
import type { Runtime, RuntimeOptions } from '../agent/runtime';
import type { BudgetPool } from '../budget/budget';
import { loadProjectConfig } from '../config/projectConfig';
import { named, resolveConfig, type ConfigInputs, type ResolvedConfig } from '../config/resolveConfig';
import { CircuitBreakers, DEFAULT_BREAKER } from '../effects/circuitBreaker';
import { LocalEngine } from '../engine/localEngine';
import { RestateEngine } from '../engine/restateEngine';
import type { Engine } from '../engine/engine';
import { ConfigError, describeError, KeelError } from '../errors';
import type { CheckpointStore, RunRecord } from '../store/checkpointStore';
import { openRunDatabase } from '../store/openStore';
import { runTree } from '../store/runTree';
import type { ReviewRecord } from '../review/reviewStore';
import { sampleRun } from '../review/sampling';
import { agentFacts } from '../trace/agentFacts';
import { exportRunTrace, traceSettings, type TraceSettings } from '../trace/traceSettings';
import { findWorkspaceRoot } from '../workspace';
import type { RuntimeFactory, RuntimeOverrides } from './runtimeFactory';
import { checkServerConsent, type ServerConsent } from './serverConsent';

export type { RuntimeFactory, RuntimeOverrides };

/** What a front end knows when it opens its host. */
export interface HostOptions {
  /** Where the project is found from: the command's working folder, or the editor's workspace folder. */
  readonly cwd: string;
  /** Command-line flags by name (`db`, `model`, `engine`, `restate-url`...). */
  readonly flags?: Readonly<Record<string, string | undefined>>;
  readonly env?: NodeJS.ProcessEnv;
  /** VS Code settings by full name, in the editor. */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** This front end's defaults where nothing is configured (see ConfigInputs). */
  readonly defaults?: ConfigInputs['defaults'];
  /** A store the caller opened (on a connection of its own) instead of the configured one; the caller closes it. */
  readonly store?: CheckpointStore;
  /** Which configured database the host opens when it is given no store: the run database (the default), or golden.database (`keel test`). */
  readonly opens?: 'runs' | 'golden';
  /** Every event of every run this host executes. */
  readonly onEvent?: RunEventListener;
  /** This process's identity as the owner of the runs it executes, when it is not the process itself. */
  readonly owner?: string;
  /** Keel's version, for exported traces. */
  readonly version?: string;
  /** Where the host says what happened in the background (a trace exported, or not). */
  readonly log?: (line: string) => void;
  /**
   * False in an editor's Restricted Mode: the project's keel.config.ts is not loaded and nothing of
   * the project runs (no agent, no tool); its runs can be read.
   */
  readonly trusted?: boolean;
  /** In the editor: servers the workspace names are reached only with the person's consent. */
  readonly serverConsent?: ServerConsent;
  /**
   * The front end only reads the store (keel runs, keel show): the runtime's code (zod, the tools'
   * sandboxes, the built-in tools) is not loaded, so it starts sooner, and the host runs nothing.
   */
  readonly readOnly?: boolean;
}

/** The runtime's class, loaded when a host that may run agents opens. */
type RuntimeClass = typeof Runtime;

/** The folder is not trusted (the editor's Restricted Mode): Keel runs nothing of it. */
export class UntrustedWorkspaceError extends KeelError {
  constructor() {
    super('This folder is in Restricted Mode, so Keel runs none of its agents and loads none of its code; trust the folder (Manage Workspace Trust) to run agents.');
  }
}

/**
 * Everything a front end needs, built in one place from one resolved configuration: the store, the
 * engine runs go through, the runtimes (sandbox, prices, pools, breakers, approval defaults) and
 * the trace settings. The runtime process, every CLI command, golden runs, the debugger's live runs
 * and `keel serve` get their runtime here and nowhere else.
 */
export class Host {
  /** The local engine: runs this process executes. The runtime process and the CLI run agents through it. */
  readonly local: LocalEngine;
  readonly breakers: CircuitBreakers;
  /** Alerts by the rules of keel.config.ts, through the store's outbox (see docs/alerts.md). */
  readonly alerts: AlertService;
  private restateEngine: RestateEngine | undefined;
  private readonly reviewListeners = new Set<(reviews: readonly ReviewRecord[]) => void>();
  private background: NodeJS.Timeout | undefined;

  private constructor(
    private resolved: ResolvedConfig,
    readonly store: CheckpointStore,
    private readonly ownsStore: boolean,
    private options: HostOptions,
    private readonly runtimeClass: RuntimeClass | undefined,
  ) {
    this.alerts = new AlertService(store, {
      config: () => this.resolved.alerts,
      owner: options.owner ?? PROCESS_OWNER,
      redact: (text) => this.trace.redactor.redact(text),
      ...(options.env ? { env: options.env } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    // Counted in the store: every process that shares it sees one circuit per dependency. One that opens here raises an alert.
    this.breakers = new CircuitBreakers(DEFAULT_BREAKER, Date.now, store, (opened) => this.alerts.circuitOpened(opened));
    const onEvent = options.onEvent;
    this.local = new LocalEngine(store, {
      runtime: (pools) => this.runtime({ pools }),
      onEvent: (event: RunEvent) => {
        onEvent?.(event);
        this.alerts.observe(event);
      },
      onStopped: (run) => this.afterRun(run),
    });
  }

  /**
   * Finds the project, loads its keel.config.ts, resolves the configuration and opens the store.
   * A value that cannot be used leaves the host open for reading; it refuses to run anything until
   * the value is fixed (see usable()), unless the value names the database itself.
   */
  static async open(options: HostOptions): Promise<Host> {
    const config = await Host.configure(options);
    if (options.serverConsent) checkServerConsent(config, options.serverConsent);
    const key = options.opens === 'golden' ? 'golden.database' : 'database';
    const unusableDatabase = config.problems.find((problem) => problem.context['key'] === key);
    if (unusableDatabase && !options.store) throw unusableDatabase;
    const source = config.entries.find((entry) => entry.key === key)?.source ?? 'default';
    const location = options.opens === 'golden' ? config.goldenDatabase : config.database;
    const runtimeClass = options.readOnly ? undefined : (await import('../agent/runtime.js')).Runtime;
    const store = options.store ?? (await openRunDatabase(location, source === 'default' ? undefined : named(source), options.log));
    return new Host(config, store, options.store === undefined, options, runtimeClass);
  }

  /** Throws the first value of the configuration that cannot be used, if any: nothing runs until it is fixed. */
  usable(): void {
    if (this.options.trusted === false) throw new UntrustedWorkspaceError();
    const [problem] = this.resolved.problems;
    if (problem) throw problem;
  }

  /** The configuration these options resolve to, without opening anything (`keel config`). */
  static async configure(options: Pick<HostOptions, 'cwd' | 'flags' | 'env' | 'settings' | 'trusted' | 'defaults'>): Promise<ResolvedConfig> {
    const root = findWorkspaceRoot(options.cwd);
    // keel.config.ts is code: an untrusted folder's is never loaded.
    const file = options.trusted === false ? undefined : await loadProjectConfig(root);
    return resolveConfig({
      root,
      ...(file ? { file } : {}),
      ...(options.flags ? { flags: options.flags } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.settings ? { settings: options.settings } : {}),
      ...(options.defaults ? { defaults: options.defaults } : {}),
    });
  }

  /** Whether the project's code may run here (false in an editor's Restricted Mode). */
  get trusted(): boolean {
    return this.options.trusted !== false;
  }

  /** The resolved configuration: every key, and where it came from. */
  get config(): ResolvedConfig {
    return this.resolved;
  }

  /**
   * Resolves the configuration again with new editor settings (runs started from now on use it).
   * The store stays the one opened: a setting that names another database asks for a new host.
   */
  async reconfigure(settings: Readonly<Record<string, unknown>>, serverConsent?: ServerConsent): Promise<void> {
    const next = await Host.configure({ ...this.options, settings });
    const consent = serverConsent ?? this.options.serverConsent;
    if (consent) checkServerConsent(next, consent);
    if (next.database !== this.resolved.database && this.ownsStore) {
      throw new ConfigError(`The runtime process is already serving another database (${this.store.location}); reload the window to open ${next.database}.`);
    }
    this.options = { ...this.options, settings, ...(consent ? { serverConsent: consent } : {}) };
    this.resolved = next;
    this.restateEngine = undefined;
  }

  /** The engine the configuration names: local, or Restate at its ingress and admin API. */
  get engine(): Engine {
    this.usable();
    return this.config.engine === 'restate' ? this.restate : this.local;
  }

  /** The Restate engine at the configured ingress and admin API (for runs Restate executes, whatever the default). */
  get restate(): RestateEngine {
    this.restateEngine ??= new RestateEngine(this.store, { ingressUrl: this.config.restateIngressUrl, adminUrl: this.config.restateAdminUrl });
    return this.restateEngine;
  }

  /** How traces are shown and exported here. Read again each time, so a bad pattern fails the request that needs it. */
  get trace(): TraceSettings {
    const { captureContent, redact, otlp, entries } = this.config;
    // Content recorded by this front end's default stays here: an export carries it only when someone turned it on.
    const chosen = entries.find((entry) => entry.key === 'trace.captureContent')?.source !== 'default';
    return {
      ...traceSettings(
        { captureContent, redactPatterns: redact, ...(otlp ? { otlp } : {}), ...(this.options.version ? { version: this.options.version } : {}) },
        this.options.env ?? process.env,
      ),
      exportContent: captureContent && chosen,
    };
  }

  /** The shared budgets of runs started now: the configured pools and today's daily allowance. */
  pools(now: number = Date.now()): BudgetPool[] {
    const { pools, dailyUsd } = this.config;
    return [...pools, ...(dailyUsd === undefined ? [] : [{ id: `daily:${new Date(now).toISOString().slice(0, 10)}`, limits: { usd: dailyUsd } }])];
  }

  /** What every runtime built here shares, for a runtime an engine builds itself (a Restate workflow's). */
  runtimeOptions(): Omit<RuntimeOptions, 'store'> {
    const { sandboxDefault, sandboxTier, prices, approvalTimeoutMs, approvalOnTimeout, budgetWaitMs } = this.config;
    return {
      breakers: this.breakers,
      sandbox: { default: sandboxDefault, tier: sandboxTier },
      prices,
      pools: this.pools(),
      ...(budgetWaitMs === undefined ? {} : { budgetWaitMs }),
      approvals: {
        ...(approvalTimeoutMs === undefined ? {} : { timeoutMs: approvalTimeoutMs }),
        ...(approvalOnTimeout === undefined ? {} : { onTimeout: approvalOnTimeout }),
      },
      ...(this.options.owner ? { owner: this.options.owner } : {}),
    };
  }

  /**
   * A runtime with the configuration applied, over this host's store or another (a golden test
   * store, an engine's journaled view of it), with more shared pools, an inspector (the debugger)
   * or an engine's own clock, randomness, sleep, steps and owner.
   */
  readonly runtime = (overrides: RuntimeOverrides = {}): Runtime => {
    this.usable();
    if (!this.runtimeClass) throw new KeelError('This host was opened to read the run database (readOnly), so it runs nothing.');
    const options = this.runtimeOptions();
    return new this.runtimeClass({ ...options, ...overrides, store: overrides.store ?? this.store, pools: [...(options.pools ?? []), ...(overrides.pools ?? [])] });
  };

  /**
   * After a run executed here stops: its trace is exported when it has ended and an endpoint is
   * configured; the alerts it raises are recorded (failed, stopped at a budget, flagged); the tool
   * calls of its tree that ran without a person's approval are sampled for review.
   */
  async afterRun(run: RunRecord): Promise<void> {
    try {
      const settings = this.trace;
      if (settings.otlp && (await exportRunTrace(this.store, run.id, settings, agentFacts(run)))) {
        this.options.log?.(`exported the trace of run ${run.id} to ${settings.redactor.redact(settings.otlp.url)}`);
      }
    } catch (error) {
      this.options.log?.(`could not export the trace of run ${run.id}: ${describeError(error)}`);
    }
    try {
      const { runFlags } = await import('../trace/runFlags.js');
      await this.alerts.runStopped(run, () => runFlags(this.store, run.id, this.trace));
    } catch (error) {
      this.options.log?.(`could not raise the alerts of run ${run.id}: ${describeError(error)}`);
    }
    try {
      const queued = await this.sampleForReview(run);
      if (queued.length > 0) for (const listener of this.reviewListeners) listener(queued);
    } catch (error) {
      this.options.log?.(`could not sample the tool calls of run ${run.id} for review: ${describeError(error)}`);
    }
  }

  /** Calls `listener` with the reviews each run that stops here queues. */
  onReviewsQueued(listener: (reviews: readonly ReviewRecord[]) => void): () => void {
    this.reviewListeners.add(listener);
    return () => this.reviewListeners.delete(listener);
  }

  /** The tool calls of a run's tree (the run and its sub-agent runs) that the sampling policy queues for review. */
  private async sampleForReview(run: RunRecord): Promise<ReviewRecord[]> {
    const rules = this.config.reviewSampling;
    if (rules.length === 0) return [];
    const { redactor } = this.trace;
    const queued: ReviewRecord[] = [];
    for (const id of await runTree(this.store, run.id)) {
      const member = id === run.id ? run : await this.store.getRun(id);
      if (member) queued.push(...(await sampleRun(this.store, member, rules, { now: Date.now(), redact: (value) => redactor.redactValue(value) })));
    }
    return queued;
  }

  /**
   * For processes that stay up (the runtime process, keel serve): every `intervalMs`, look at the
   * store for alerts (approvals waiting or escalated, spend over a threshold) and deliver what is due.
   */
  startBackground(intervalMs: number): void {
    this.background ??= setInterval(() => {
      this.alerts
        .scan()
        .then(() => this.alerts.dispatcher.deliverDue())
        .catch((error: unknown) => this.options.log?.(`could not check or deliver alerts: ${describeError(error)}`));
    }, intervalMs);
    this.background.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.background);
    await this.alerts.idle();
    await this.local.close();
    // What the breakers counted reaches the store before it closes.
    await this.breakers.settled();
    await this.restateEngine?.close();
    if (this.ownsStore) await this.store.close();
  }
}
