import type { Agent } from '../agent/define';
import { modelLabel } from '../model/model';
import { TERMINAL_STATES, type CheckpointStore, type RunRecord } from '../store/checkpointStore';
import { formatDuration, formatTokens, formatTokensExact, formatUsd } from '../../shared/format';
import { mergeLimits, type BudgetDimension, type BudgetLimits, type BudgetPool } from './budget';

/** The median and the 95th percentile of a figure over earlier runs. */
export interface Spread {
  readonly p50: number;
  readonly p95: number;
}

/** What earlier completed runs of an agent with one model spent, with their sub-agent runs. */
export interface ModelForecast {
  /** `provider:name`, the model the runs started with. */
  readonly model: string;
  /** Completed runs the figures rest on. */
  readonly basedOn: number;
  readonly tokens: Spread;
  readonly inputTokens: Spread;
  readonly outputTokens: Spread;
  readonly usd: Spread;
  /** Journal steps of the run itself (a step budget is per run). */
  readonly steps: Spread;
  /** Time spent running, pauses excluded, of the run itself. */
  readonly activeMs: Spread;
  /** False when some of those runs used a model without a known price: their money is a lower bound. */
  readonly costKnown: boolean;
}

/** What a run of an agent will likely spend, from its earlier top-level runs that ended (the last 200). */
export interface Forecast {
  readonly agent: string;
  /** Per model, from completed runs only, the model with the most runs first. */
  readonly models: readonly ModelForecast[];
  /** Earlier runs that ended otherwise: not in the figures, which they would pull down. */
  readonly failed: number;
  readonly budgetExceeded: number;
  readonly cancelled: number;
}

/** The forecast of a run about to start, compared with the budgets it will draw on. */
export interface RunForecast {
  readonly agent: string;
  /** The model the run will start with. */
  readonly model: string;
  /** Null before any run of the agent ended. */
  readonly forecast: Forecast | null;
  /** The forecast in a sentence (see `forecastSentence`); null before any run of the agent ended. */
  readonly sentence: string | null;
  /** One sentence per budget that 95% of earlier completed runs with this model spent more than. */
  readonly warnings: readonly string[];
}

const RUNS_CONSIDERED = 200;
/** How many runs are read to find the last 200 top-level ones and their sub-agent runs. */
const RUNS_READ = 5000;

/** What a run of `agent` will likely cost, from its earlier runs that ended. Undefined before any did. */
export async function forecast(store: CheckpointStore, agent: string): Promise<Forecast | undefined> {
  return (await earlierRuns(store, agent))?.forecast;
}

type Figures = Record<(typeof DIMENSIONS)[number]['key'], number[]>;

/** The forecast, and each model's figures run by run (sorted), to count the runs over a budget. */
async function earlierRuns(store: CheckpointStore, agent: string): Promise<{ forecast: Forecast; figures: Map<string, Figures> } | undefined> {
  const listed = await store.listRuns({ limit: RUNS_READ });
  const ended = listed.filter((run) => run.agent === agent && run.parentRunId === null && TERMINAL_STATES.includes(run.state)).slice(0, RUNS_CONSIDERED);
  if (ended.length === 0) return undefined;
  const children = new Map<string, RunRecord[]>();
  for (const run of listed) if (run.parentRunId !== null) children.set(run.parentRunId, [...(children.get(run.parentRunId) ?? []), run]);
  const figures = new Map<string, Figures>();
  for (const run of ended.filter((candidate) => candidate.state === 'completed')) {
    const tree = treeOf(run, children);
    const sum = (value: (member: RunRecord) => number) => tree.reduce((total, member) => total + value(member), 0);
    const entry = figures.get(run.model) ?? { usd: [], tokens: [], inputTokens: [], outputTokens: [], steps: [], wallTimeMs: [] };
    entry.usd.push(sum((member) => member.costUsd));
    entry.tokens.push(sum((member) => member.usage.inputTokens + member.usage.outputTokens));
    entry.inputTokens.push(sum((member) => member.usage.inputTokens));
    entry.outputTokens.push(sum((member) => member.usage.outputTokens));
    entry.steps.push(run.stepCount);
    entry.wallTimeMs.push(run.activeMs);
    figures.set(run.model, entry);
  }
  for (const entry of figures.values()) for (const values of Object.values(entry)) values.sort((a, b) => a - b);
  const costKnown = new Set(ended.filter((run) => !treeOf(run, children).every((member) => member.costKnown)).map((run) => run.model));
  const models = [...figures].map(([model, entry]): ModelForecast => ({
    model,
    basedOn: entry.usd.length,
    tokens: spread(entry.tokens),
    inputTokens: spread(entry.inputTokens),
    outputTokens: spread(entry.outputTokens),
    usd: spread(entry.usd),
    steps: spread(entry.steps),
    activeMs: spread(entry.wallTimeMs),
    costKnown: !costKnown.has(model),
  }));
  models.sort((a, b) => b.basedOn - a.basedOn || a.model.localeCompare(b.model));
  const count = (state: RunRecord['state']) => ended.filter((run) => run.state === state).length;
  return { forecast: { agent, models, failed: count('failed'), budgetExceeded: count('budget_exceeded'), cancelled: count('cancelled') }, figures };
}

/** A run and its sub-agent runs, however deep. */
function treeOf(run: RunRecord, children: ReadonlyMap<string, readonly RunRecord[]>): RunRecord[] {
  const tree = [run];
  for (let index = 0; index < tree.length; index++) tree.push(...(children.get(tree[index]?.id ?? '') ?? []));
  return tree;
}

function spread(sorted: readonly number[]): Spread {
  return { p50: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95) };
}

function nearestRank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

/**
 * The forecast of a run of `agent` with `model`, and a warning for each budget it will draw on (its
 * own `budget`, what is left of the shared `pools`) that the 95th percentile of earlier completed
 * runs with that model is over.
 */
export async function forecastRun(
  store: CheckpointStore,
  options: { readonly agent: string; readonly model: string; readonly budget?: BudgetLimits | undefined; readonly pools?: readonly BudgetPool[] },
): Promise<RunForecast> {
  const { agent, model } = options;
  const earlier = await earlierRuns(store, agent);
  const figures = earlier?.figures.get(model);
  if (!earlier || !figures) return withSentence({ agent, model, forecast: earlier?.forecast ?? null, warnings: [] });
  const warnings = overBudget(model, figures, options.budget, (what, limit) => `this run's ${what} of ${limit}`);
  for (const pool of await poolsLeft(store, options.pools ?? [])) {
    warnings.push(...overBudget(model, figures, pool.left, (what, left) => `the ${left} left of the shared ${what} ${pool.id}`));
  }
  return withSentence({ agent, model, forecast: earlier.forecast, warnings });
}

function withSentence(run: Omit<RunForecast, 'sentence'>): RunForecast {
  return { ...run, sentence: forecastSentence(run) ?? null };
}

/** The forecast of a run of an agent as defined, with the model (a label) and the budget it would run with. */
export function forecastAgentRun(
  store: CheckpointStore,
  agent: Agent,
  options: { readonly model?: string | undefined; readonly budget?: BudgetLimits | undefined; readonly pools?: readonly BudgetPool[] },
): Promise<RunForecast> {
  const model = options.model ?? (typeof agent.model === 'string' ? agent.model : modelLabel(agent.model));
  return forecastRun(store, { agent: agent.name, model, budget: mergeLimits(agent.budget, options.budget), ...(options.pools ? { pools: options.pools } : {}) });
}

type PoolLimits = Pick<BudgetLimits, 'inputTokens' | 'outputTokens' | 'tokens' | 'usd'>;

/** What is left of each limit of the shared pools, spent and held counted. */
async function poolsLeft(store: CheckpointStore, pools: readonly BudgetPool[]): Promise<{ id: string; left: PoolLimits }[]> {
  const records = new Map((await store.getBudgets(pools.map((pool) => `pool:${pool.id}`))).map((record) => [record.id, record]));
  return pools.map((pool) => {
    const record = records.get(`pool:${pool.id}`);
    const spent = record ? [record.spent, record.reserved] : [];
    const used = { ...NO_USED };
    for (const amounts of spent) {
      used.inputTokens += amounts.inputTokens;
      used.outputTokens += amounts.outputTokens;
      used.tokens += amounts.inputTokens + amounts.outputTokens;
      used.usd += amounts.usd;
    }
    const left: { -readonly [K in keyof PoolLimits]: number } = {};
    for (const key of ['inputTokens', 'outputTokens', 'tokens', 'usd'] as const) {
      const limit = pool.limits[key];
      if (limit !== undefined) left[key] = Math.max(0, limit - used[key]);
    }
    return { id: pool.id, left };
  });
}

const NO_USED = { inputTokens: 0, outputTokens: 0, tokens: 0, usd: 0 };

const DIMENSIONS = [
  { key: 'usd', what: 'money budget', format: formatUsd },
  { key: 'tokens', what: 'token budget', format: formatTokensExact },
  { key: 'inputTokens', what: 'input-token budget', format: (n: number) => `${Math.round(n).toLocaleString('en-US')} input tokens` },
  { key: 'outputTokens', what: 'output-token budget', format: (n: number) => `${Math.round(n).toLocaleString('en-US')} output tokens` },
  { key: 'steps', what: 'step budget', format: (n: number) => `${n} steps` },
  { key: 'wallTimeMs', what: 'time budget', format: formatDuration },
] as const satisfies readonly { key: BudgetDimension; what: string; format: (value: number) => string }[];

/** A sentence for each limit that the 95th percentile of the runs' figures is over. */
function overBudget(model: string, figures: Figures, limits: BudgetLimits | undefined, budget: (what: string, limit: string) => string): string[] {
  if (!limits) return [];
  return DIMENSIONS.flatMap(({ key, what, format }) => {
    const limit = limits[key];
    const values = figures[key];
    const p95 = nearestRank(values, 0.95);
    if (limit === undefined || p95 <= limit) return [];
    const over = values.filter((value) => value > limit).length;
    return [
      `${values.length === 1 ? 'The earlier completed run' : '95% of earlier completed runs'} with ${model} spent up to ${format(p95)}, more than ${budget(what, format(limit))}` +
        `${values.length === 1 ? '' : ` (${over} of ${values.length} spent more)`}: this run may stop before it is done.`,
    ];
  });
}

/**
 * The forecast in a sentence, as `keel run` prints it and the editor's run prompt shows it:
 * `Earlier completed runs with openai:gpt-4o-mini: typically $0.0005 and 3.1k tokens, 95% under
 * $0.0007 and 3.4k tokens (12 runs; not counted: 2 failed).` Undefined before any run ended.
 */
export function forecastSentence(run: Omit<RunForecast, 'sentence'>): string | undefined {
  const found = run.forecast;
  if (!found) return undefined;
  const { failed, budgetExceeded, cancelled } = found;
  const apart = [
    ...(failed > 0 ? [`${failed} failed`] : []),
    ...(budgetExceeded > 0 ? [`${budgetExceeded} stopped at a budget`] : []),
    ...(cancelled > 0 ? [`${cancelled} cancelled`] : []),
  ].join(', ');
  const figures = found.models.find((entry) => entry.model === run.model);
  const shown = figures ?? found.models[0];
  if (!shown) return `No earlier run of ${run.agent} completed (${apart}).`;
  const money = (usd: number) => `${formatUsd(usd)}${shown.costKnown ? '' : '+'}`;
  const runs = `${shown.basedOn} run${shown.basedOn === 1 ? '' : 's'}${apart ? `; not counted: ${apart}` : ''}`;
  const spend =
    `typically ${money(shown.usd.p50)} and ${formatTokens(shown.tokens.p50)} tokens, ` +
    `95% under ${money(shown.usd.p95)} and ${formatTokens(shown.tokens.p95)} tokens (${runs}).`;
  return figures ? `Earlier completed runs with ${run.model}: ${spend}` : `No completed run with ${run.model} yet; with ${shown.model}: ${spend}`;
}
