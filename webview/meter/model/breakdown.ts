import type { ModelSpend } from '../../../src/protocol/spend';

/** The per-model breakdown: what each model cost over a run and its sub-agent runs. No DOM here. */

export interface ModelRow {
  /** `provider:model`. */
  readonly model: string;
  readonly calls: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly tokens: number;
  readonly usd: number;
  /** Calls without a known price: `usd` leaves them out. */
  readonly unpricedCalls: number;
  /** Of the total money, or of the total tokens when nothing cost money. 0 to 1. */
  readonly share: number;
  /** The runs that used it. */
  readonly runs: number;
}

export interface Breakdown {
  readonly rows: readonly ModelRow[];
  readonly total: Omit<ModelRow, 'model' | 'share'>;
}

/**
 * Sums each model's spend over the runs (one entry per run and model), most expensive first (most
 * tokens first among equals, then by name), with each model's share of the whole.
 */
export function breakdown(spends: readonly ModelSpend[]): Breakdown {
  const byModel = new Map<string, { row: Omit<ModelRow, 'share' | 'runs'>; runs: Set<string> }>();
  for (const spend of spends) {
    const entry = byModel.get(spend.model) ?? {
      row: { model: spend.model, calls: 0, inputTokens: 0, outputTokens: 0, tokens: 0, usd: 0, unpricedCalls: 0 },
      runs: new Set<string>(),
    };
    const { row } = entry;
    entry.row = {
      model: row.model,
      calls: row.calls + spend.calls,
      inputTokens: row.inputTokens + spend.inputTokens,
      outputTokens: row.outputTokens + spend.outputTokens,
      tokens: row.tokens + spend.inputTokens + spend.outputTokens,
      usd: row.usd + spend.usd,
      unpricedCalls: row.unpricedCalls + spend.unpricedCalls,
    };
    entry.runs.add(spend.runId);
    byModel.set(spend.model, entry);
  }
  const entries = [...byModel.values()];
  const allRuns = new Set(spends.map((spend) => spend.runId));
  const total = {
    calls: sum(entries, (entry) => entry.row.calls),
    inputTokens: sum(entries, (entry) => entry.row.inputTokens),
    outputTokens: sum(entries, (entry) => entry.row.outputTokens),
    tokens: sum(entries, (entry) => entry.row.tokens),
    usd: sum(entries, (entry) => entry.row.usd),
    unpricedCalls: sum(entries, (entry) => entry.row.unpricedCalls),
    runs: allRuns.size,
  };
  const byMoney = total.usd > 0;
  const rows = entries
    .map(({ row, runs }) => {
      const part = byMoney ? row.usd / total.usd : total.tokens > 0 ? row.tokens / total.tokens : 0;
      return { ...row, share: part, runs: runs.size };
    })
    .sort((a, b) => b.usd - a.usd || b.tokens - a.tokens || a.model.localeCompare(b.model));
  return { rows, total };
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
