import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { checkAlerts, shownChannels, type ResolvedAlerts } from '../alerts/resolveAlerts';
import type { BudgetLimits, BudgetPool } from '../budget/budget';
import type { SamplingRule } from '../review/reviewConfig';
import { parsePriceTable, type PriceTable } from '../budget/prices';
import { SANDBOX_TIERS, type SandboxTier } from '../sandbox/tier';
import type { SandboxDefault } from '../sandbox/toolRunner';
import { isPostgresUrl } from '../store/storeLocation';
import type { OtlpOptions } from '../trace/otlpConfig';
import { DATABASE_RELATIVE_PATH } from '../workspace';
import { ConfigError } from '../errors';
import type { KeelConfig } from './keelConfig';

/**
 * One order decides every value: the command-line flag, then the environment variable, then the VS
 * Code setting (in the editor), then keel.config.ts, then Keel's default.
 */
export type ConfigSource = `flag --${string}` | `env ${string}` | `setting ${string}` | 'keel.config.ts' | 'default';

/** What a front end knows of its configuration before it is resolved. */
export interface ConfigInputs {
  /** The project root (where keel.config.ts would be). */
  readonly root: string;
  /** The project's keel.config.ts, loaded, with its path; absent when the project has none. */
  readonly file?: { readonly path: string; readonly config: KeelConfig };
  /** Command-line flags by name without dashes (`db`, `model`, `engine`, `restate-url`...). */
  readonly flags?: Readonly<Record<string, string | undefined>>;
  readonly env?: NodeJS.ProcessEnv;
  /** VS Code settings by their full name (`keel.databasePath`), as the editor passes them. */
  readonly settings?: Readonly<Record<string, unknown>>;
  /**
   * This front end's own defaults, where nothing is configured: the editor's runtime process records
   * content in traces (its runs are the developer's own); `keel test` keeps golden case runs in memory.
   */
  readonly defaults?: { readonly captureContent?: boolean; readonly goldenDatabase?: string };
}

/** The location of a store kept only while its process lives. */
const MEMORY = ':memory:';

export type OnTimeout = 'reject' | { readonly escalateTo: string };

export interface ResolvedConfig {
  readonly root: string;
  /** The keel.config.ts read, if any. */
  readonly file: string | undefined;
  /** An absolute SQLite path or a PostgreSQL URL. */
  readonly database: string;
  readonly model: string | undefined;
  readonly prices: readonly PriceTable[];
  readonly runBudget: BudgetLimits | undefined;
  readonly dailyUsd: number | undefined;
  readonly pools: readonly BudgetPool[];
  readonly budgetWaitMs: number | undefined;
  readonly sandboxDefault: SandboxDefault;
  readonly sandboxTier: SandboxTier;
  readonly captureContent: boolean;
  readonly redact: readonly string[];
  readonly otlp: OtlpOptions | undefined;
  readonly engine: 'local' | 'restate';
  readonly restateIngressUrl: string;
  readonly restateAdminUrl: string;
  readonly approvalTimeoutMs: number | undefined;
  readonly approvalOnTimeout: OnTimeout | undefined;
  /** An absolute SQLite path, or `:memory:`. */
  readonly goldenDatabase: string;
  /** Alert channels and rules (keel.config.ts `alerts`). */
  readonly alerts: ResolvedAlerts;
  /** Which calls that ran without a person's approval are sampled for review (keel.config.ts `review.sample`). */
  readonly reviewSampling: readonly SamplingRule[];
  /** Every key with the value it resolved to (secrets hidden) and where that came from, for `keel config`. */
  readonly entries: readonly ConfigEntry[];
  /**
   * Values that could not be used, each a sentence naming its source: their keys took the default
   * instead, and nothing may run until they are fixed (see Host.usable()).
   */
  readonly problems: readonly ConfigError[];
}

export interface ConfigEntry {
  readonly key: string;
  readonly value: unknown;
  readonly source: ConfigSource;
}

/** A value as one source gives it, not yet checked. */
type Candidate = readonly [ConfigSource, unknown];

const YES = /^(?:1|true|yes|on)$/i;
const NO = /^(?:0|false|no|off)$/i;

/** Resolves every key from its sources, in the one order; throws a ConfigError naming the source of a bad value. */
export function resolveConfig(inputs: ConfigInputs): ResolvedConfig {
  const env = inputs.env ?? process.env;
  const flags = inputs.flags ?? {};
  const settings = inputs.settings ?? {};
  const config = inputs.file?.config ?? {};
  const entries: ConfigEntry[] = [];
  const problems: ConfigError[] = [];

  const flag = (name: string): Candidate[] => (flags[name] === undefined ? [] : [[`flag --${name}`, flags[name]]]);
  const fromEnv = (name: string): Candidate[] => (env[name]?.trim() ? [[`env ${name}`, env[name]!.trim()]] : []);
  const setting = (name: string): Candidate[] => {
    const value = settings[name];
    return value === undefined || value === null || (typeof value === 'string' && value.trim() === '') ? [] : [[`setting ${name}`, value]];
  };
  const file = (value: unknown): Candidate[] => (value === undefined ? [] : [['keel.config.ts', value]]);

  /** The first candidate, checked; else the default. Records the entry, or the problem with the value. */
  function pick<T>(key: string, candidates: readonly Candidate[], check: (value: unknown, source: ConfigSource) => T, fallback: T, shown?: (value: T) => unknown): T {
    const [first] = candidates;
    if (!first) {
      entries.push({ key, value: shown ? shown(fallback) : fallback, source: 'default' });
      return fallback;
    }
    try {
      const value = check(first[1], first[0]);
      entries.push({ key, value: shown ? shown(value) : value, source: first[0] });
      return value;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(new ConfigError(error.message, { context: { key, source: first[0] } }));
      entries.push({ key, value: '(not usable)', source: first[0] });
      return fallback;
    }
  }

  const database = pick(
    'database',
    [...flag('db'), ...fromEnv('KEEL_DB'), ...setting('keel.databasePath'), ...file(config.database)],
    (value, source) => location(text(value, source), inputs.root),
    join(inputs.root, DATABASE_RELATIVE_PATH),
    hidePassword,
  );
  const model = pick('model', [...flag('model'), ...fromEnv('KEEL_MODEL'), ...setting('keel.model'), ...file(config.model)], text, undefined as string | undefined);
  const prices = pick(
    'prices',
    [...fromEnv('KEEL_PRICES'), ...setting('keel.prices'), ...file(config.prices)],
    (value, source) => [priceTable(value, source, inputs.root)],
    [] as PriceTable[],
  );
  const runBudget = pick('budget.run', file(config.budget?.run), (value) => value as BudgetLimits, undefined as BudgetLimits | undefined);
  const dailyUsd = pick(
    'budget.dailyUsd',
    [...fromEnv('KEEL_DAILY_USD'), ...setting('keel.budget.dailyUsd'), ...file(config.budget?.dailyUsd)],
    (value, source) => {
      const amount = typeof value === 'number' ? value : Number(text(value, source).replace(/^\$/, ''));
      if (!Number.isFinite(amount) || amount < 0) throw new ConfigError(`${named(source)} must be a number of dollars of at least 0 (got ${JSON.stringify(value)}).`);
      return amount;
    },
    undefined as number | undefined,
  );
  const pools = pick('budget.pools', file(config.budget?.pools), (value) => value as BudgetPool[], [] as BudgetPool[]);
  const budgetWaitMs = pick('budget.waitMs', file(config.budget?.waitMs), (value) => value as number, undefined as number | undefined);
  const sandboxDefault = pick(
    'sandbox.default',
    [...fromEnv('KEEL_SANDBOX'), ...setting('keel.sandbox.default'), ...file(config.sandbox?.default)],
    (value, source) => oneOf(value, source, ['marked', 'all'] as const, '"marked" (only tools marked sandbox run in it) or "all"'),
    'marked' as SandboxDefault,
  );
  const sandboxTier = pick(
    'sandbox.tier',
    [...fromEnv('KEEL_SANDBOX_TIER'), ...file(config.sandbox?.tier)],
    (value, source) => oneOf(value, source, SANDBOX_TIERS, '"isolate", "process" or "os"'),
    'isolate' as SandboxTier,
  );
  const captureContent = pick(
    'trace.captureContent',
    [
      ...fromEnv('KEEL_CAPTURE_CONTENT'),
      ...fromEnv('OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'),
      ...setting('keel.trace.captureContent'),
      ...file(config.trace?.captureContent),
    ],
    yesNo,
    inputs.defaults?.captureContent ?? false,
  );
  // Redaction only ever adds: these patterns apply on top of Keel's own and KEEL_REDACT's.
  const redact = config.trace?.redact ?? [];
  entries.push({ key: 'trace.redact', value: redact, source: redact.length > 0 ? 'keel.config.ts' : 'default' });
  const endpoint = pick(
    'trace.otlp.endpoint',
    [
      ...flag('endpoint').map(([source, value]): Candidate => [source, tracesUrl(value)]),
      ...fromEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
      ...fromEnv('OTEL_EXPORTER_OTLP_ENDPOINT').map(([source, value]): Candidate => [source, tracesUrl(value)]),
      ...file(config.trace?.otlp?.endpoint).map(([source, value]): Candidate => [source, tracesUrl(value)]),
    ],
    (value, source) => url(value, source),
    undefined as string | undefined,
  );
  const otlpFile = config.trace?.otlp;
  const otlp: OtlpOptions | undefined =
    endpoint === undefined
      ? undefined
      : { endpoint, ...(otlpFile?.headers ? { headers: otlpFile.headers } : {}), ...(otlpFile?.protocol ? { protocol: otlpFile.protocol } : {}) };
  const engine = pick(
    'engine',
    [...flag('engine'), ...fromEnv('KEEL_ENGINE'), ...file(config.engine?.kind)],
    (value, source) => oneOf(value, source, ['local', 'restate'] as const, 'local or restate'),
    'local' as 'local' | 'restate',
  );
  const restateIngressUrl = pick(
    'engine.restate.ingressUrl',
    [...flag('restate-url'), ...fromEnv('KEEL_RESTATE_URL'), ...file(config.engine?.restate?.ingressUrl)],
    url,
    'http://127.0.0.1:8080',
  );
  const restateAdminUrl = pick(
    'engine.restate.adminUrl',
    [...flag('restate-admin'), ...fromEnv('KEEL_RESTATE_ADMIN_URL'), ...file(config.engine?.restate?.adminUrl)],
    url,
    'http://127.0.0.1:9070',
  );
  const approvalTimeoutMs = pick('approvals.timeoutMs', file(config.approvals?.timeoutMs), (value) => value as number, undefined as number | undefined);
  const approvalOnTimeout = pick('approvals.onTimeout', file(config.approvals?.onTimeout), (value) => value as OnTimeout, undefined as OnTimeout | undefined);
  const goldenDatabase = pick(
    'golden.database',
    // The setting left empty keeps them in memory, as its description says.
    [...(settings['keel.golden.database'] === '' ? [['setting keel.golden.database', MEMORY] as Candidate] : setting('keel.golden.database')), ...file(config.golden?.database)],
    (value, source) => {
      const path = text(value, source);
      return path === MEMORY ? path : resolve(inputs.root, path);
    },
    inputs.defaults?.goldenDatabase ?? join(inputs.root, '.keel', 'golden.db'),
  );

  const alerts = pick(
    'alerts',
    file(config.alerts),
    (value) => checkAlerts(value as NonNullable<KeelConfig['alerts']>, approvalOnTimeout),
    checkAlerts({}, undefined),
    shownChannels,
  );
  const reviewSampling = pick('review.sample', file(config.review?.sample), (value) => value as SamplingRule[], [] as SamplingRule[]);

  return {
    root: inputs.root,
    file: inputs.file?.path,
    database,
    model,
    prices,
    runBudget,
    dailyUsd,
    pools,
    budgetWaitMs,
    sandboxDefault,
    sandboxTier,
    captureContent,
    redact,
    otlp,
    engine,
    restateIngressUrl,
    restateAdminUrl,
    approvalTimeoutMs,
    approvalOnTimeout,
    goldenDatabase,
    alerts,
    reviewSampling,
    entries,
    problems,
  };
}

/** How messages name where a value came from: `--db`, `KEEL_DB`, `keel.databasePath`, `keel.config.ts`. */
export function named(source: ConfigSource): string {
  if (source.startsWith('flag ')) return source.slice(5);
  if (source.startsWith('env ') || source.startsWith('setting ')) return source.slice(source.indexOf(' ') + 1);
  return source;
}

function text(value: unknown, source: ConfigSource): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${named(source)} must be a non-empty string (got ${JSON.stringify(value)}).`);
  return value.trim();
}

function oneOf<T extends string>(value: unknown, source: ConfigSource, allowed: readonly T[], what: string): T {
  const given = typeof value === 'string' ? value.trim() : value;
  if (typeof given === 'string' && (allowed as readonly string[]).includes(given)) return given as T;
  throw new ConfigError(`${named(source)} must be ${what} (got ${JSON.stringify(value)}).`);
}

function yesNo(value: unknown, source: ConfigSource): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && YES.test(value.trim())) return true;
  if (typeof value === 'string' && NO.test(value.trim())) return false;
  throw new ConfigError(`${named(source)} must be true or false (1 or 0; got ${JSON.stringify(value)}).`);
}

function url(value: unknown, source: ConfigSource): string {
  const given = text(value, source);
  try {
    const parsed = new URL(given);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return given;
  } catch {
    // Said below.
  }
  throw new ConfigError(`${named(source)} must be an http:// or https:// URL (got ${JSON.stringify(given)}).`);
}

/** An OTLP base URL as OTEL_EXPORTER_OTLP_ENDPOINT takes it: the traces path is added. */
function tracesUrl(value: unknown): unknown {
  return typeof value === 'string' && value.trim() !== '' ? `${value.trim().replace(/\/+$/, '')}/v1/traces` : value;
}

/** A database location: a PostgreSQL URL as given, or an SQLite path made absolute from the project root. */
function location(value: string, root: string): string {
  return isPostgresUrl(value) || value === ':memory:' || isAbsolute(value) ? value : resolve(root, value);
}

function hidePassword(value: string): string {
  return isPostgresUrl(value) ? value.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@') : value;
}

function priceTable(value: unknown, source: ConfigSource, root: string): PriceTable {
  const where = named(source);
  try {
    if (typeof value === 'object' && value !== null) return parsePriceTable(JSON.stringify(value), where);
    const given = text(value, source);
    if (given.startsWith('{')) return parsePriceTable(given, where);
    const path = resolve(root, given);
    if (!existsSync(path)) throw new Error(`${where} names the price file ${path}, which does not exist.`);
    return parsePriceTable(readFileSync(path, 'utf8'), path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}
