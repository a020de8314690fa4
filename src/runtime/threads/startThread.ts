import type { Agent } from '../agent/define';
import { memoryStoreOf } from '../memory/memoryCapable';
import type { CheckpointStore } from '../store/checkpointStore';
import { checkThreadId } from './threadStore';

/**
 * Before a run of a thread or a task is recorded: checks the ids, creates the thread if it is new
 * (refusing one that is another agent's conversation), and gives the run's fields.
 */
export async function threadAndTask(
  store: CheckpointStore,
  agent: Agent,
  options: { readonly threadId?: string | undefined; readonly taskId?: string | undefined; readonly input: string; readonly at: number },
): Promise<{ threadId?: string; taskId?: string }> {
  const { threadId, taskId } = options;
  if (threadId === undefined && taskId === undefined) return {};
  const kept = memoryStoreOf(store, threadId === undefined ? 'A run of a task' : 'A run in a thread');
  if (threadId !== undefined) {
    checkThreadId(threadId);
    await kept.threads.ensure({ id: threadId, agent: agent.name, title: options.input, at: options.at });
  }
  if (taskId !== undefined) checkThreadId(taskId, 'task');
  return { ...(threadId === undefined ? {} : { threadId }), ...(taskId === undefined ? {} : { taskId }) };
}
