import { z } from 'zod';
import { defineTool, type Agent, type Tool, type ToolContext } from '../agent/define';
import { KeelError } from '../errors';
import type { ContentChannel } from './channel';
import type { MemoryItem } from './memoryStore';
import { progressCounts, progressOf, progressUpdateSchema } from './progress';
import { StepMemory } from './runMemory';

/**
 * Keel's own tools for the model: memory_search, memory_get, memory_put and memory_delete over
 * the agent's namespaces (`defineAgent({ memory: { namespaces, tools: true } })`), and
 * update_progress in runs of a task. What the model writes is no more trusted than what it had
 * read; what it reads back is labelled with its channel, inside the fence the guard puts around
 * every tool result.
 */

/** The agent as a run of it sees it: its own tools and Keel's. */
export function withBuiltinTools(agent: Agent, taskId: string | null): Agent {
  const extra: Tool[] = [];
  const namespaces = agent.memory?.namespaces;
  if (agent.memory?.tools && namespaces) extra.push(...memoryTools(namespaces));
  if (taskId !== null) extra.push(updateProgressTool(taskId));
  if (extra.length === 0) return agent;
  for (const tool of extra) {
    if (agent.tools.has(tool.name)) {
      throw new KeelError(`The agent ${agent.name} has a tool of its own named ${tool.name}, which is the name of a tool Keel adds to this run; rename it.`);
    }
  }
  return Object.freeze({ ...agent, tools: new Map([...agent.tools, ...extra.map((tool): [string, Tool] => [tool.name, tool])]) });
}

/** The model's write: as trusted as the conversation it had read so far. */
async function modelChannel(ctx: ToolContext): Promise<ContentChannel> {
  return ctx.memory instanceof StepMemory ? ctx.memory.modelChannel() : 'tool_output';
}

/** A stored value as the model reads it, labelled with the channel it came from. */
export function itemText(item: MemoryItem): string {
  const value = typeof item.value === 'string' ? item.value : JSON.stringify(item.value, null, 2);
  return `${item.namespace}/${item.key} (${item.channel}):\n${value}`;
}

function memoryTools(namespaces: readonly string[]): Tool[] {
  const listed = namespaces.join(', ');
  const exact = namespaces.filter((namespace) => !namespace.endsWith('*'));
  const namespace = z.string().describe(`The memory namespace: one of ${listed}.`);
  const key = z.string().min(1).describe('The key of the value within the namespace.');
  return [
    defineTool({
      name: 'memory_search',
      description: `Search long-term memory (namespaces ${listed}) for what was remembered earlier. Returns the best matches.`,
      args: z.object({
        query: z.string().min(1).describe('What to look for.'),
        namespace: namespace.optional().describe(`One namespace to search; ${exact.length > 0 ? `by default ${exact.join(', ')}` : 'required'}.`),
      }),
      effect: 'none',
      run: async ({ query, namespace: only }, ctx) => {
        const where = only === undefined ? exact : [only];
        if (where.length === 0) throw new KeelError(`Name the namespace to search: one of ${listed}.`);
        const hits = await ctx.memory.search(where, query);
        if (hits.length === 0) return `Nothing in ${where.join(', ')} matches "${query}".`;
        return hits.map((hit) => itemText(hit.item)).join('\n\n');
      },
    }),
    defineTool({
      name: 'memory_get',
      description: `Read one value from long-term memory (namespaces ${listed}).`,
      args: z.object({ namespace, key }),
      effect: 'none',
      run: async (args, ctx) => {
        const item = await ctx.memory.get(args.namespace, args.key);
        return item ? itemText(item) : `Nothing is stored under ${args.namespace}/${args.key}.`;
      },
    }),
    defineTool({
      name: 'memory_put',
      description: `Remember something for later runs in long-term memory (namespaces ${listed}), under a key; replaces what the key held.`,
      args: z.object({ namespace, key, value: z.string().describe('What to remember, as text.') }),
      effect: 'idempotent',
      run: async (args, ctx) => {
        const item = await ctx.memory.put(args.namespace, args.key, args.value, { channel: await modelChannel(ctx) });
        return `Saved ${item.namespace}/${item.key} (revision ${item.revision}).`;
      },
    }),
    defineTool({
      name: 'memory_delete',
      description: `Forget a value in long-term memory (namespaces ${listed}).`,
      args: z.object({ namespace, key }),
      effect: 'idempotent',
      run: async (args, ctx) =>
        (await ctx.memory.delete(args.namespace, args.key)) ? `Deleted ${args.namespace}/${args.key}.` : `Nothing was stored under ${args.namespace}/${args.key}.`,
    }),
  ];
}

function updateProgressTool(taskId: string): Tool {
  return defineTool({
    name: 'update_progress',
    description:
      `Keep the progress notes of task ${taskId}: what is done, in progress, next, and still open. ` +
      'The next run of this task starts from them. Each list you give replaces the one kept; lists you leave out stay as they are.',
    args: progressUpdateSchema,
    effect: 'idempotent',
    run: async (change, ctx) => {
      const item =
        ctx.memory instanceof StepMemory ? await ctx.memory.updateProgressFromModel(change) : undefined;
      const record = item ? progressOf(item.value) : await ctx.progress.update(change);
      return `Progress notes of task ${taskId} saved: ${progressCounts(record)}.`;
    },
  });
}
