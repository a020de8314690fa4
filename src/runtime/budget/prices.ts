/** USD per million tokens. */
export interface Price {
  readonly inputPerMTok: number;
  readonly outputPerMTok: number;
}

export type PriceTable = Readonly<Record<string, Price>>;

/**
 * List prices of common models (USD per million tokens, standard tier, as published by their
 * vendors in 2025). Override or extend them with the `keel.prices` setting, `KEEL_PRICES` or an
 * agent's `prices`. A model is matched by the longest name that starts its id, so dated snapshots
 * (`gpt-4o-mini-2024-07-18`) take their family's price.
 */
export const DEFAULT_PRICES: PriceTable = {
  'gpt-5': { inputPerMTok: 1.25, outputPerMTok: 10 },
  'gpt-5-mini': { inputPerMTok: 0.25, outputPerMTok: 2 },
  'gpt-5-nano': { inputPerMTok: 0.05, outputPerMTok: 0.4 },
  'gpt-4.1': { inputPerMTok: 2, outputPerMTok: 8 },
  'gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  'gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4 },
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  o3: { inputPerMTok: 2, outputPerMTok: 8 },
  'o3-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4 },
  'o4-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4 },
  'claude-opus-4': { inputPerMTok: 15, outputPerMTok: 75 },
  'claude-sonnet-4': { inputPerMTok: 3, outputPerMTok: 15 },
  'claude-3-5-haiku': { inputPerMTok: 0.8, outputPerMTok: 4 },
  'gemini-2.5-pro': { inputPerMTok: 1.25, outputPerMTok: 10 },
  'gemini-2.5-flash': { inputPerMTok: 0.3, outputPerMTok: 2.5 },
};

/** Keel's scripted models run offline and cost nothing. */
const FREE_PROVIDERS = new Set(['keel.scripted']);

/** The price of a model, or undefined when no table knows it (its spend is then unknown, not zero). */
export function priceOf(provider: string, model: string, tables: readonly PriceTable[]): Price | undefined {
  if (FREE_PROVIDERS.has(provider)) return { inputPerMTok: 0, outputPerMTok: 0 };
  for (const table of tables) {
    const match = Object.keys(table)
      .filter((name) => model === name || model.startsWith(`${name}-`) || model.startsWith(`${name}:`))
      .sort((a, b) => b.length - a.length)[0];
    if (match) return table[match];
  }
  return undefined;
}

/** What some tokens cost at a price, in USD. */
export function costOf(price: Price, inputTokens: number, outputTokens: number): number {
  return (inputTokens * price.inputPerMTok + outputTokens * price.outputPerMTok) / 1_000_000;
}

/** Reads a price table from JSON (`{"my-model": {"inputPerMTok": 1, "outputPerMTok": 2}}`), checking it. */
export function parsePriceTable(text: string, where: string): PriceTable {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} must be an object of model names to prices.`);
  for (const [model, price] of Object.entries(value)) {
    const p = price as Partial<Price> | null;
    if (typeof p?.inputPerMTok !== 'number' || typeof p.outputPerMTok !== 'number' || p.inputPerMTok < 0 || p.outputPerMTok < 0) {
      throw new Error(`${where}: the price of "${model}" needs inputPerMTok and outputPerMTok, in USD per million tokens.`);
    }
  }
  return value as PriceTable;
}
