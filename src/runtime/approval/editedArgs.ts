import { loadAgentFile } from '../agent/loader';
import type { CheckpointStore } from '../store/checkpointStore';
import { rootRunOf } from '../store/runTree';
import { DecisionError, type DecisionRequest } from './decide';

/**
 * Checks arguments a person edited before approving against the tool's schema, before anything is
 * recorded: a decision the call would then fail on is refused in one sentence naming the field.
 * The tool's schema comes from the agent file of the approval's run; when that file no longer
 * loads or the tool is not in it (an MCP tool), the call checks them when it runs, as before.
 */
export async function checkEditedArgs(store: CheckpointStore, approvalId: string, request: DecisionRequest): Promise<void> {
  if (request.action !== 'approve' || request.args === undefined) return;
  const approval = await store.getApproval(approvalId);
  const run = approval ? await store.getRun(approval.runId) : undefined;
  if (!approval || approval.kind === 'unknown_outcome' || !run) return;
  const file = run.agentFile ?? (await rootRunOf(store, run.id)).agentFile;
  if (!file) return;
  const loaded = await loadAgentFile(file, { agent: run.agent }).catch(() => undefined);
  const tool = loaded?.agent.tools.get(approval.tool);
  const checked = tool?.args.safeParse(request.args);
  if (!checked || checked.success) return;
  const [issue] = checked.error.issues;
  const field = issue && issue.path.length > 0 ? `\`${issue.path.map(String).join('.')}\`` : 'the arguments';
  const problem = (issue?.message ?? 'invalid').replace(/^Invalid input: /, '');
  throw new DecisionError(`The edited arguments do not fit ${approval.tool}'s schema: ${field}: ${problem}; nothing was decided.`);
}
