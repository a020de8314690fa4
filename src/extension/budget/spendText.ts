import { isAbsolute, join } from 'node:path';
import type { CostSettings } from '../../protocol/daemon';
import type { Forecast } from '../../protocol/records';
import { formatTokens, formatUsd } from '../../shared/format';

/** Cost settings and the forecast, as the editor reads and words them (no vscode here, so unit tests can run it). */

export const RUN_PROMPT = 'What should the agent do?';

/**
 * The prompt of the run input box: the question, then what earlier runs of the agent cost, e.g.
 * `What should the agent do? Earlier runs: typically $0.0012 and 1.6k tokens, 95% under $0.003 and 2k tokens (12 runs).`
 */
export function runPrompt(forecast: Forecast | null): string {
  if (!forecast) return RUN_PROMPT;
  const runs = `${forecast.basedOn} run${forecast.basedOn === 1 ? '' : 's'}`;
  const money = (usd: number) => `${formatUsd(usd)}${forecast.costKnown ? '' : '+'}`;
  return (
    `${RUN_PROMPT} Earlier runs: typically ${money(forecast.usd.p50)} and ${formatTokens(forecast.tokens.p50)} tokens, ` +
    `95% under ${money(forecast.usd.p95)} and ${formatTokens(forecast.tokens.p95)} tokens (${runs}` +
    `${forecast.costKnown ? '' : '; some prices unknown'}).`
  );
}

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
