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

/** The agents each agent was defined with (loading one file), as `relateAgents` recorded them. */
const definedWith = new WeakMap<Agent, readonly Agent[]>();

/** Records agents defined together, so that a sub-agent a tool starts by itself is found by its name. */
export function relateAgents(agents: readonly Agent[]): void {
  for (const agent of agents) definedWith.set(agent, agents);
}

/**
 * The agents among `agents`, the sub-agents their tools call and the agents defined with them,
 * however deep, each once.
 */
export function reachableAgents(agents: readonly Agent[]): Agent[] {
  const found = [...new Set(agents)];
  const add = (agent: Agent | undefined) => {
    if (agent && !found.includes(agent)) found.push(agent);
  };
  for (let index = 0; index < found.length; index++) {
    const agent = found[index]!;
    for (const tool of agent.tools.values()) add(subAgentOf(tool));
    for (const other of definedWith.get(agent) ?? []) add(other);
  }
  return found;
}
