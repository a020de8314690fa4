import type { Agent, Tool } from '../agent/define';
import { KeelError } from '../errors';
import { PATTERN_DESCRIPTIONS, screenContent, type ScreenFinding } from '../guard/screen';
import type { CheckpointStore } from '../store/checkpointStore';
import type { McpConnections, McpServerRef, McpSession } from './connections';
import { definitionHash, describeChange, type McpPin, type McpToolDefinition, type PinnedServer, type PinnedTool } from './definitions';
import { matchesTool, valueFor, type AgentMcp } from './mcpConfig';
import { channelOf, effectOf, mcpTool } from './mcpTool';
import { sharedMcpManager } from './mcpManager';
import { McpConfigError, serverSpecs, variablesFor, type McpServerSpec } from './serverSpec';

/**
 * Adds an agent's MCP tools to it for one run: at the start from what its servers offer now
 * (pinning every definition), at a resume or replay from what the run pinned (a definition that
 * changed since stops it, saying what changed). Tool descriptions go through the injection screen
 * first; a flagged one stops the run's start until a person accepts it.
 */

export interface McpResolveOptions {
  /** The process's McpManager by default. */
  readonly connections?: McpConnections;
  /** The agent's file, whose folder the servers' `${workspaceFolder}` and `.vscode/mcp.json` come from. */
  readonly agentFile: string | null;
  /** What the run pinned, when it is resumed or replayed (null: it pinned nothing). */
  readonly pinned?: McpPin | null;
  /** Where earlier runs are, for descriptions a person accepted then. */
  readonly store?: CheckpointStore;
  /** Whether descriptions are screened (the guard is on). */
  readonly screen: boolean;
  /** `report` lists flagged descriptions in the resolution instead of refusing them (for `keel mcp ls`). */
  readonly flagged?: 'refuse' | 'report';
  readonly env?: NodeJS.ProcessEnv;
}

export interface McpResolution {
  readonly agent: Agent;
  /** Undefined when the agent has no MCP servers. */
  readonly pin: McpPin | undefined;
  /** Tools whose descriptions the screen flagged and no person accepted yet (`server/tool`), when reported. */
  readonly flagged?: readonly FlaggedTool[];
}

export interface FlaggedTool {
  readonly tool: string;
  readonly findings: readonly ScreenFinding[];
}

/** On a resume or replay: a pinned tool the server no longer offers as it was. */
export class McpDefinitionChangedError extends KeelError {}

/** At a run's start: tool descriptions that read like a prompt injection, not yet accepted by a person. */
export class McpFlaggedToolError extends KeelError {
  constructor(readonly flagged: readonly FlaggedTool[]) {
    const list = flagged
      .map(({ tool, findings }) => `${tool} (${findings.map((finding) => `${PATTERN_DESCRIPTIONS[finding.pattern]}: "${finding.excerpt}"`).join('; ')})`)
      .join(', ');
    super(
      `The description of MCP tool ${list} reads like a prompt injection. Read it (keel mcp ls), then accept it for this run with --accept-mcp-tool ${flagged.map(({ tool }) => tool).join(',')} or leave the tool out with mcp.tools.deny.`,
      { context: { flagged } },
    );
  }
}

/** How far back a run that accepted a flagged description is looked for. */
const ACCEPTANCE_LOOKBACK = 500;

export async function withMcpTools(agent: Agent, options: McpResolveOptions): Promise<McpResolution> {
  const mcp = agent.mcp;
  const pinned = options.pinned ?? undefined;
  const connections = options.connections ?? sharedMcpManager();
  if (!mcp) {
    if (pinned && Object.keys(pinned).length > 0) {
      throw new McpDefinitionChangedError(`The run used tools of MCP server${Object.keys(pinned).length > 1 ? 's' : ''} ${Object.keys(pinned).join(', ')}, which the agent no longer declares.`);
    }
    return { agent, pin: undefined };
  }
  let specs: Map<string, McpServerSpec> | undefined;
  const specOf = (name: string): McpServerSpec => {
    specs ??= new Map(serverSpecs(mcp, variablesFor(options.agentFile, options.env)).map((spec) => [spec.name, spec]));
    return specs.get(name)!;
  };
  // A resumed run keeps the servers it started with; one the agent added since is not offered to it.
  const names = Object.keys(mcp.servers).filter((name) => options.pinned === undefined || pinned?.[name] !== undefined);
  if (pinned) {
    const gone = Object.keys(pinned).filter((name) => !(name in mcp.servers));
    if (gone.length > 0) throw new McpDefinitionChangedError(`The run used tools of MCP server ${gone.join(', ')}, which the agent no longer declares.`);
  }
  const refs: McpServerRef[] = names.map((name) => ({ name, spec: () => specOf(name), pinned: pinned?.[name] }));
  const sessions = await Promise.all(refs.map(async (ref) => ({ ref, session: await connections.session(ref) })));
  const offered = await Promise.all(sessions.map(async ({ ref, session }) => ({ ref, session, tools: await session.listTools() })));

  const pin: Record<string, PinnedServer> = {};
  const tools: Tool[] = [];
  const flagged: FlaggedTool[] = [];
  for (const { ref, session, tools: list } of offered) {
    // A description that names a tool of its own server ("use read_text_file instead") is ordinary; one that names the agent's or another server's is not.
    const otherNames = [...agent.tools.keys(), ...offered.filter((other) => other.ref !== ref).flatMap((other) => other.tools.map((tool) => tool.name))];
    const chosen = ref.pinned ? pinnedTools(ref, list) : list.filter((tool) => offers(mcp, ref.name, tool.name));
    const pinnedTools_: Record<string, PinnedTool> = {};
    for (const definition of chosen) {
      const hash = definitionHash(definition);
      const findings = !ref.pinned && options.screen ? screenContent(describedText(definition), otherNames) : [];
      if (findings.length > 0 && !(await accepted(connections, options.store, ref.name, definition.name, hash))) flagged.push({ tool: `${ref.name}/${definition.name}`, findings });
      const earlier = ref.pinned?.tools[definition.name]?.flagged;
      const flags = findings.length > 0 ? findings : earlier;
      pinnedTools_[definition.name] = { hash, definition, ...(flags && flags.length > 0 ? { flagged: flags } : {}) };
      tools.push(
        mcpTool({
          name: keelName(mcp, ref.name, definition.name),
          server: ref,
          definition,
          connections,
          effect: valueFor(mcp.effects, ref.name, definition.name) ?? effectOf(definition),
          channel: valueFor(mcp.channels, ref.name, definition.name) ?? channelOf(definition),
          timeoutMs: mcp.timeoutMs,
        }),
      );
    }
    pin[ref.name] = { ...serverFacts(session), tools: pinnedTools_ };
  }
  if (options.flagged === 'report') return { agent: joined(agent, tools), pin, flagged };
  if (flagged.length > 0) throw new McpFlaggedToolError(flagged);
  return { agent: joined(agent, tools), pin };
}

/** Whether the agent takes this tool: allowed (or no allow list) and not denied. */
export function offers(mcp: AgentMcp, server: string, tool: string): boolean {
  if (mcp.allow !== null && !mcp.allow.some((pattern) => matchesTool(pattern, server, tool))) return false;
  return !mcp.deny.some((pattern) => matchesTool(pattern, server, tool));
}

/** The tool's name in the agent: the MCP name, or `server_tool`, with characters models refuse made `_`. */
export function keelName(mcp: AgentMcp, server: string, tool: string): string {
  return (mcp.prefix ? `${server}_${tool}` : tool).replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

/** The tools a resumed run pinned, as the server offers them now: each must be unchanged. */
function pinnedTools(ref: McpServerRef, offered: readonly McpToolDefinition[]): McpToolDefinition[] {
  const byName = new Map(offered.map((tool) => [tool.name, tool]));
  const problems: string[] = [];
  const chosen: McpToolDefinition[] = [];
  for (const [name, pinned] of Object.entries(ref.pinned?.tools ?? {})) {
    const now = byName.get(name);
    if (!now) {
      problems.push(`${name} is no longer offered`);
      continue;
    }
    if (definitionHash(now) !== pinned.hash) {
      const changes = describeChange(pinned.definition, now);
      problems.push(`${name} changed: ${changes.length > 0 ? changes.join('; ') : 'its definition differs'}`);
    }
    chosen.push(now);
  }
  if (problems.length > 0) {
    throw new McpDefinitionChangedError(
      `MCP server ${ref.name} changed since the run started: ${problems.join('. ')}. The run goes on only with the tools it started with; restore them or start a new run.`,
    );
  }
  return chosen;
}

/** What of a definition the model reads, for the injection screen: title, description and the schema's descriptions. */
function describedText(definition: McpToolDefinition): string {
  const texts = [definition.title ?? '', definition.annotations?.title ?? '', definition.description ?? ''];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, inner] of Object.entries(value)) {
        if ((key === 'description' || key === 'title') && typeof inner === 'string') texts.push(inner);
        else visit(inner);
      }
    }
  };
  visit(definition.inputSchema);
  return texts.filter((text) => text !== '').join('\n');
}

/** A flagged description is accepted by a person for this process, or was by a run that started with it. */
async function accepted(connections: McpConnections, store: CheckpointStore | undefined, server: string, tool: string, hash: string): Promise<boolean> {
  if (connections.accepted.has(`${server}/${tool}`)) return true;
  if (!store) return false;
  const runs = await store.listRuns({ limit: ACCEPTANCE_LOOKBACK });
  return runs.some((run) => run.agentFacts?.mcp?.[server]?.tools[tool]?.hash === hash);
}

function serverFacts(session: McpSession): Omit<PinnedServer, 'tools'> {
  const { info, protocolVersion, transport, address, port } = session.server;
  return { info, protocolVersion, transport, ...(address === undefined ? {} : { address }), ...(port === undefined ? {} : { port }) };
}

function joined(agent: Agent, tools: readonly Tool[]): Agent {
  const all = new Map(agent.tools);
  for (const tool of tools) {
    const clash = all.get(tool.name);
    if (clash) {
      const other = clash.origin ? `MCP server ${clash.origin.server}'s` : "the agent's own";
      throw new McpConfigError(
        `Two tools are named ${tool.name}: ${other} and MCP server ${tool.origin?.server ?? ''}'s. Leave one out with mcp.tools.deny, or set mcp.prefix to name MCP tools server_tool.`,
      );
    }
    all.set(tool.name, tool);
  }
  const missing = agent.requiredTools.filter((name) => !all.has(name));
  if (missing.length > 0) throw new McpConfigError(`\`requiredTools\` names ${missing.join(', ')}, which neither the agent nor its MCP servers offer.`);
  return Object.freeze({ ...agent, tools: all });
}
