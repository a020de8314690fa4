import { RunPausedError } from '../errors';
import type { RunRecord } from '../store/checkpointStore';

// Pauses begin in errors.ts, below the retry loop that lets them through; the sub-agent's is here.
export { RunPausedError };

/**
 * A sub-agent run stopped before its end: it waits for a decision (its parent waits too, as
 * `waiting_approval`), or it was interrupted or runs elsewhere (its parent stops `interrupted`).
 * Its parent goes on once the sub-agent can.
 */
export class SubAgentPausedError extends RunPausedError {
  constructor(readonly child: RunRecord) {
    super(subAgentPauseMessage(child));
  }

  /** How the parent stops: waiting for the same decisions, or interrupted like the sub-agent. */
  get parentState(): 'waiting_approval' | 'interrupted' {
    return this.child.state === 'waiting_approval' ? 'waiting_approval' : 'interrupted';
  }
}

function subAgentPauseMessage(child: RunRecord): string {
  const who = `The ${child.agent} sub-agent (run ${child.id})`;
  switch (child.state) {
    case 'waiting_approval':
      return `${who} is waiting for a decision: ${child.error ?? 'see keel approvals'}`;
    case 'running':
      return `${who} is running in another process (${child.owner ?? 'unknown'}); resume this run once it has stopped.`;
    default:
      return `${who} was interrupted${child.error ? `: ${child.error}` : ''}; resume this run to continue it.`;
  }
}
