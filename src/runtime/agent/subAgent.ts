import { z } from 'zod';
import { defineTool, type Agent, type Tool } from './define';

export interface AgentToolOptions {
  /** The tool's name; the agent's by default. */
  readonly name?: string;
  readonly description?: string;
}

/**
 * An agent as a tool another agent can call. Each call is a sub-agent run of its own, linked to
 * the calling run and drawing on its budgets; it is idempotent, so a resumed parent continues the
 * same sub-agent run rather than starting a second one.
 */
export function agentTool(agent: Agent, options: AgentToolOptions = {}): Tool {
  const tool = defineTool({
    name: options.name ?? agent.name,
    description: options.description ?? `Ask the ${agent.name} agent to do a task; it answers with its result.`,
    args: z.object({ task: z.string().min(1).describe(`What the ${agent.name} agent should do, in full.`) }),
    effect: 'idempotent',
    run: ({ task }, ctx) => ctx.subAgent(agent, task),
  });
  subAgents.set(tool, agent);
  return tool;
}

const subAgents = new WeakMap<Tool, Agent>();

/** The agent a tool made by agentTool() runs, so that a replay can check that agent's runs too. */
export function subAgentOf(tool: Tool): Agent | undefined {
  return subAgents.get(tool);
}

/** The agents among `agents` and the sub-agents they call, however deep, each once. */
export function reachableAgents(agents: readonly Agent[]): Agent[] {
  const found = [...new Set(agents)];
  for (let index = 0; index < found.length; index++) {
    for (const tool of found[index]!.tools.values()) {
      const sub = subAgentOf(tool);
      if (sub && !found.includes(sub)) found.push(sub);
    }
  }
  return found;
}
