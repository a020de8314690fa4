import { isAbsolute, join } from 'node:path';
import type { CostSettings } from '../../protocol/daemon';

/**
 * The runtime's cost settings from the editor's: `keel.prices` (a JSON object, JSON text, or the
 * path of a JSON file, relative to the workspace) and `keel.budget.dailyUsd` (a number; empty for none).
 */
export function costSettingsFrom(prices: unknown, dailyUsd: unknown, workspaceRoot: string | undefined): CostSettings {
  const settings: { prices?: string; dailyUsd?: number } = {};
  if (typeof prices === 'object' && prices !== null && Object.keys(prices).length > 0) {
    settings.prices = JSON.stringify(prices);
  } else if (typeof prices === 'string' && prices.trim() !== '') {
    const text = prices.trim();
    settings.prices = text.startsWith('{') || isAbsolute(text) || !workspaceRoot ? text : join(workspaceRoot, text);
  }
  if (typeof dailyUsd === 'number') settings.dailyUsd = dailyUsd;
  else if (typeof dailyUsd === 'string' && dailyUsd.trim() !== '') settings.dailyUsd = Number(dailyUsd.trim().replace(/^\$/, ''));
  return settings;
}
