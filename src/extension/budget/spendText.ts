import type { RunForecast } from '../../protocol/records';

/** The cost forecast, as the editor words it (no vscode here, so unit tests can run it). */

export const RUN_PROMPT = 'What should the agent do?';

/**
 * The prompt of the run input box: the question, then what earlier completed runs of the agent
 * with its model cost, e.g. `What should the agent do? Earlier completed runs with openai:gpt-4o-mini:
 * typically $0.0012 and 1.6k tokens, 95% under $0.003 and 2k tokens (12 runs).`
 */
export function runPrompt(forecast: RunForecast | null): string {
  return forecast?.sentence ? `${RUN_PROMPT} ${forecast.sentence}` : RUN_PROMPT;
}

/** The warning under the run input box when earlier runs say the budget will likely not do: shown as a warning, it does not stop the run. */
export function runWarning(forecast: RunForecast | null): string | undefined {
  return forecast && forecast.warnings.length > 0 ? forecast.warnings.join(' ') : undefined;
}
