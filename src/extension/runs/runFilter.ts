import type { Run, RunState } from '../../protocol/records';
import { RUN_STATE_LABELS } from '../../shared/runText';

/**
 * The Runs view's filter, written as a query: `agent:travel state:failed flagged paris`. Words
 * with a prefix narrow by agent or state (each may repeat: any of them matches), `flagged` keeps
 * runs a detector flagged, and every other word must occur in the run's input, result, error,
 * agent or id. No vscode here, so unit tests can run it.
 */
export interface RunFilter {
  readonly query: string;
  readonly agents: readonly string[];
  readonly states: readonly RunState[];
  readonly flagged: boolean;
  readonly words: readonly string[];
}

const STATES = Object.keys(RUN_STATE_LABELS) as RunState[];

/** Other words people use for a state. */
const STATE_WORDS: Readonly<Record<string, RunState>> = { waiting: 'waiting_approval', paused: 'waiting_approval', budget: 'budget_exceeded', ok: 'completed' };

/** The filter a query says, or one sentence on what is wrong with it. */
export function parseRunFilter(query: string): RunFilter | { readonly error: string } {
  const agents: string[] = [];
  const states: RunState[] = [];
  const words: string[] = [];
  let flagged = false;
  for (const word of query.trim().split(/\s+/).filter((part) => part !== '')) {
    const [prefix, ...rest] = word.split(':');
    const value = rest.join(':').toLowerCase();
    if (rest.length > 0 && prefix?.toLowerCase() === 'agent') {
      if (value === '') return { error: 'agent: needs an agent name, as in agent:travel.' };
      agents.push(value);
    } else if (rest.length > 0 && prefix?.toLowerCase() === 'state') {
      const state = STATES.find((candidate) => candidate === value) ?? STATE_WORDS[value];
      if (!state) return { error: `There is no run state "${value}": use one of ${STATES.join(', ')}.` };
      states.push(state);
    } else if (word.toLowerCase() === 'flagged' || word.toLowerCase() === 'is:flagged') {
      flagged = true;
    } else {
      words.push(word.toLowerCase());
    }
  }
  return { query: query.trim(), agents, states, flagged, words };
}

/** Whether `run` passes; `flagCount` is how many flags its trace has, when the filter asks for flagged runs. */
export function matchesRun(filter: RunFilter, run: Run, flagCount: number): boolean {
  if (filter.agents.length > 0 && !filter.agents.includes(run.agent.toLowerCase())) return false;
  if (filter.states.length > 0 && !filter.states.includes(run.state)) return false;
  if (filter.flagged && flagCount === 0) return false;
  const text = [run.input, run.result ?? '', run.error ?? '', run.agent, run.id].join('\n').toLowerCase();
  return filter.words.every((word) => text.includes(word));
}
