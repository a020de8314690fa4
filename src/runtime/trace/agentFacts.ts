import type { RunRecord } from '../store/checkpointStore';
import type { DetectorOptions } from './detectors';

/** What a trace needs to know of the agent that is not in the journal. */
export interface AgentFacts extends Pick<DetectorOptions, 'requiredTools' | 'evidence'> {
  /** Tool effects by tool name, for calls the effect ledger has no entry of (the agent's own definitions). */
  readonly toolEffects?: Readonly<Record<string, string>>;
}

/**
 * The agent as the run recorded it when it started: its required tools, its instructions (text
 * a final answer may quote without inventing it) and its tools' effects. Runs recorded before
 * Keel kept these give no facts; their traces are built without the checks that need them.
 */
export function agentFacts(run: RunRecord): AgentFacts {
  const facts = run.agentFacts;
  if (!facts) return {};
  return { requiredTools: facts.requiredTools, evidence: [facts.instructions], toolEffects: facts.toolEffects };
}
