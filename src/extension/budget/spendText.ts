import type { Forecast } from '../../protocol/records';
import { formatTokens, formatUsd } from '../../shared/format';

/** The cost forecast, as the editor words it (no vscode here, so unit tests can run it). */

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
