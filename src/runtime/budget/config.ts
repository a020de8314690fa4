import { existsSync, readFileSync } from 'node:fs';
import { KeelError } from '../errors';
import type { BudgetPool } from './budget';
import { parsePriceTable, type PriceTable } from './prices';

export interface CostSettings {
  /** Prices beyond Keel's table: JSON, or the path of a JSON file. `KEEL_PRICES` in the environment. */
  readonly prices?: string;
  /** A money allowance per day that every run started here shares. `KEEL_DAILY_USD`. */
  readonly dailyUsd?: number;
}

/** The price tables and shared pools that cost settings ask for; today's daily pool is `daily:YYYY-MM-DD`. */
export function costOptions(settings: CostSettings, now: number = Date.now()): { prices: PriceTable[]; pools: BudgetPool[] } {
  const prices: PriceTable[] = [];
  if (settings.prices?.trim()) {
    const source = settings.prices.trim();
    const fromFile = !source.startsWith('{') && existsSync(source);
    try {
      prices.push(parsePriceTable(fromFile ? readFileSync(source, 'utf8') : source, fromFile ? source : 'The price table'));
    } catch (error) {
      throw new KeelError(error instanceof Error ? error.message : String(error));
    }
  }
  const pools: BudgetPool[] = [];
  if (settings.dailyUsd !== undefined) {
    if (!(settings.dailyUsd >= 0)) throw new KeelError(`The daily budget must be a number of dollars of at least 0 (got ${settings.dailyUsd}).`);
    pools.push({ id: `daily:${new Date(now).toISOString().slice(0, 10)}`, limits: { usd: settings.dailyUsd } });
  }
  return { prices, pools };
}

/** Cost settings from the environment: `KEEL_PRICES` and `KEEL_DAILY_USD`. */
export function costSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): CostSettings {
  const daily = env['KEEL_DAILY_USD'];
  return {
    ...(env['KEEL_PRICES'] ? { prices: env['KEEL_PRICES'] } : {}),
    ...(daily ? { dailyUsd: Number(daily) } : {}),
  };
}
