import { TERMINAL_STATES, type CheckpointStore, type RunRecord } from '../store/checkpointStore';

export interface Forecast {
  /** Earlier runs of the agent the forecast rests on. */
  readonly basedOn: number;
  readonly tokens: { readonly p50: number; readonly p95: number };
  readonly usd: { readonly p50: number; readonly p95: number };
  /** False when some of those runs used a model without a known price. */
  readonly costKnown: boolean;
}

/**
 * What a run of `agent` will likely cost, from its earlier runs that ended (the last 200):
 * medians and 95th percentiles of tokens and money. Undefined before any run ended.
 */
export async function forecast(store: CheckpointStore, agent: string): Promise<Forecast | undefined> {
  const runs = (await store.listRuns({ limit: 1000, states: TERMINAL_STATES }))
    .filter((run) => run.agent === agent && run.parentRunId === null)
    .slice(0, 200);
  if (runs.length === 0) return undefined;
  const tokens = runs.map((run) => run.usage.inputTokens + run.usage.outputTokens).sort((a, b) => a - b);
  const usd = runs.map((run) => run.costUsd).sort((a, b) => a - b);
  return {
    basedOn: runs.length,
    tokens: { p50: nearestRank(tokens, 0.5), p95: nearestRank(tokens, 0.95) },
    usd: { p50: nearestRank(usd, 0.5), p95: nearestRank(usd, 0.95) },
    costKnown: runs.every((run: RunRecord) => run.costKnown),
  };
}

function nearestRank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

/** The forecast for the agent of an agent file: the agent its latest top-level run recorded (sub-agent runs record their parent's file). */
export async function forecastForFile(store: CheckpointStore, file: string): Promise<{ readonly agent: string | null; readonly forecast: Forecast | null }> {
  const agent = (await store.listRuns({ limit: 1000 })).find((run) => run.agentFile === file && run.parentRunId === null)?.agent;
  return { agent: agent ?? null, forecast: agent ? ((await forecast(store, agent)) ?? null) : null };
}
