import { z } from 'zod';
import type { AlertsConfig } from '../alerts/alertConfig';
import { alertsSchema } from '../alerts/alertSchema';
import type { BudgetLimits, BudgetPool } from '../budget/budget';
import type { PriceTable } from '../budget/prices';
import { ConfigError } from '../errors';
import type { ReviewConfig } from '../review/reviewConfig';
import { reviewSchema } from '../review/reviewSchema';

/**
 * A project's Keel configuration: `keel.config.ts` at the root of the project, exporting
 * `defineConfig({...})` as its default. Every key is optional; a command-line flag, an environment
 * variable or (in the editor) a VS Code setting overrides it, and `keel config` shows where each
 * value came from (see docs/configuration.md).
 */
export interface KeelConfig {
  /** Where runs are recorded: an SQLite file (relative to the project root) or a `postgres://` URL. Default `.keel/keel.db`. */
  readonly database?: string;
  /** Run agents with this model instead of their own, such as `openai:gpt-4o-mini`. */
  readonly model?: string;
  /** Model prices beyond Keel's table, in USD per million tokens, or the path of a JSON file holding them. */
  readonly prices?: PriceTable | string;
  readonly budget?: {
    /** Limits every run gets on top of its agent's own (a flag such as `--budget-usd` tightens them further). */
    readonly run?: BudgetLimits;
    /** A money allowance per day (UTC) that every run started here shares: the pool `daily:YYYY-MM-DD`. */
    readonly dailyUsd?: number;
    /** Budgets shared by every run started here, such as a team's monthly allowance. */
    readonly pools?: readonly BudgetPool[];
    /** How long a model call whose budgets are full waits for calls in flight to settle before its run stops, in milliseconds. Default 30000. */
    readonly waitMs?: number;
  };
  readonly sandbox?: {
    /** Which tools run in the sandbox: those marked `sandbox` (the default), or all of them. */
    readonly default?: 'marked' | 'all';
    /**
     * Where sandboxed tools that do not choose a tier run (docs/sandbox.md): `isolate` (the
     * default: an isolated-vm isolate in a worker process), `process` (a Node process of their
     * own) or `os` (that process under the OS sandbox).
     */
    readonly tier?: 'isolate' | 'process' | 'os';
  };
  readonly trace?: {
    /** Record prompts, completions, tool arguments and results in traces (redaction still applies). */
    readonly captureContent?: boolean;
    /** More secrets to redact, as regular expressions. */
    readonly redact?: readonly string[];
    /** Export each run's trace over OTLP when it ends. */
    readonly otlp?: {
      /** The collector's base URL; `/v1/traces` is added, as OTEL_EXPORTER_OTLP_ENDPOINT does. */
      readonly endpoint?: string;
      readonly headers?: Readonly<Record<string, string>>;
      readonly protocol?: 'http/protobuf' | 'http/json';
    };
  };
  readonly engine?: {
    /** Where runs execute: `local` (in the process that starts them) or `restate`. */
    readonly kind?: 'local' | 'restate';
    readonly restate?: {
      /** Restate's ingress, where runs start and decisions arrive. Default `http://127.0.0.1:8080`. */
      readonly ingressUrl?: string;
      /** Restate's admin API, where services register and runs are cancelled. Default `http://127.0.0.1:9070`. */
      readonly adminUrl?: string;
    };
  };
  /** What approvals do when their agent and tool say nothing of it. */
  readonly approvals?: {
    /** How long a request waits for a decision, in milliseconds. */
    readonly timeoutMs?: number;
    /** What the deadline does: reject the call, or hand it to someone else. */
    readonly onTimeout?: 'reject' | { readonly escalateTo: string };
  };
  readonly golden?: {
    /** Where golden test runs are kept, relative to the project root; `:memory:` keeps none. Default `.keel/golden.db`. */
    readonly database?: string;
  };
  /** Who is told when something goes wrong: channels, and rules naming the events each gets (docs/alerts.md). */
  readonly alerts?: AlertsConfig;
  /** Which tool calls that ran without a person's approval are queued for review after the fact (docs/review.md). */
  readonly review?: ReviewConfig;
}


const limits = z
  .object({
    inputTokens: z.number().nonnegative(),
    outputTokens: z.number().nonnegative(),
    tokens: z.number().nonnegative(),
    usd: z.number().nonnegative(),
    steps: z.number().int().nonnegative(),
    wallTimeMs: z.number().nonnegative(),
    warnAt: z.number().gt(0).lte(1),
  })
  .partial()
  .strict();

const price = z.object({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() }).strict();

const schema = z
  .object({
    database: z.string().trim().min(1),
    model: z.string().trim().min(1),
    prices: z.union([z.string().trim().min(1), z.record(z.string(), price)]),
    budget: z
      .object({
        run: limits,
        dailyUsd: z.number().nonnegative(),
        pools: z.array(z.object({ id: z.string().min(1), limits: limits.pick({ inputTokens: true, outputTokens: true, tokens: true, usd: true }) }).strict()),
        waitMs: z.number().nonnegative(),
      })
      .partial()
      .strict(),
    sandbox: z.object({ default: z.enum(['marked', 'all']), tier: z.enum(['isolate', 'process', 'os']) }).partial().strict(),
    trace: z
      .object({
        captureContent: z.boolean(),
        redact: z.array(z.string()),
        otlp: z
          .object({ endpoint: z.url(), headers: z.record(z.string(), z.string()), protocol: z.enum(['http/protobuf', 'http/json']) })
          .partial()
          .strict(),
      })
      .partial()
      .strict(),
    engine: z
      .object({ kind: z.enum(['local', 'restate']), restate: z.object({ ingressUrl: z.url(), adminUrl: z.url() }).partial().strict() })
      .partial()
      .strict(),
    approvals: z
      .object({ timeoutMs: z.number().positive(), onTimeout: z.union([z.literal('reject'), z.object({ escalateTo: z.string().min(1) }).strict()]) })
      .partial()
      .strict(),
    golden: z.object({ database: z.string().trim().min(1) }).partial().strict(),
    alerts: alertsSchema,
    review: reviewSchema,
  })
  .partial()
  .strict();

/**
 * Checks a configuration and returns it, so that `keel.config.ts` is typed where it is written:
 * `export default defineConfig({ database: 'postgres://…', budget: { dailyUsd: 20 } })`.
 * A key Keel does not know, or a value of the wrong kind, is a ConfigError naming it.
 */
export function defineConfig(config: KeelConfig): KeelConfig {
  return checkConfig(config, 'defineConfig');
}

export function checkConfig(config: unknown, where: string): KeelConfig {
  const result = schema.safeParse(config);
  if (result.success) return result.data as KeelConfig;
  const [issue] = result.error.issues;
  const keyPath = issue?.path.map(String) ?? [];
  const path = keyPath.join('.');
  const what =
    issue?.code === 'unrecognized_keys'
      ? `${issue.keys.map((key) => (path ? `${path}.${key}` : key)).join(', ')} ${issue.keys.length === 1 ? 'is not a key' : 'are not keys'} Keel knows`
      : `${path || 'the configuration'}: ${issue?.message ?? 'invalid'}`;
  const reason = `${what} (see docs/configuration.md).`;
  // Where the mistake is: the key Keel does not know, or the key whose value is wrong.
  const at = issue?.code === 'unrecognized_keys' ? [...keyPath, ...issue.keys.slice(0, 1)] : keyPath;
  throw new ConfigError(`${where}: ${reason}`, { context: { reason, keyPath: at } });
}
