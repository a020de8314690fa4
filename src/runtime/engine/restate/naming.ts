import { RESTATE_OWNER_PREFIX } from '../../agent/owner';
import type { RunRecord } from '../../store/checkpointStore';

/**
 * How Restate names what Keel serves, and how a run says Restate executes it. Apart from the
 * workflow code (and the Restate SDK it loads), for the CLI and the editor.
 */

/** Whether a run is executed by Restate (as its owner says), so that only Restate may continue it. */
export function isRestateOwned(run: RunRecord): boolean {
  return run.owner?.startsWith(RESTATE_OWNER_PREFIX) === true;
}

/** The Restate service (a workflow) an agent is served as. */
export function workflowNameFor(agentName: string): string {
  return `keel.${agentName}`;
}
