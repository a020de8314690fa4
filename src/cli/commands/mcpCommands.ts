import { defineAgent, type Agent } from '../../runtime/agent/define';
import { loadAgentFile } from '../../runtime/agent/loader';
import { KeelError } from '../../runtime/errors';
import { truncate } from '../../shared/format';
import { PATTERN_DESCRIPTIONS } from '../../runtime/guard/screen';
import { readMcpJson } from '../../runtime/mcp/serverSpec';
import { UsageError, type Command } from '../command';
import { out, parse, style } from '../shared';
import { findWorkspaceRoot } from '../../runtime/workspace';

/** `keel mcp ls [agent]`: the MCP servers an agent (or the workspace's .vscode/mcp.json) declares, and their tools as Keel takes them. */

interface ToolRow {
  readonly server: string;
  readonly tool: string;
  readonly mcpName: string;
  readonly effect: string;
  readonly channel: string;
  readonly schemaHash: string;
  readonly description: string;
  /** What the injection screen found in the description, if anything. */
  readonly flagged: readonly string[];
}

interface ServerRow {
  readonly name: string;
  readonly info: { readonly name: string; readonly version: string };
  readonly transport: string;
  readonly protocolVersion: string;
}

async function ls(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [file, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError('keel mcp ls takes at most one agent file: keel mcp ls [file.agent.ts]');
  const { agent, agentFile } = file === undefined ? workspaceAgent() : await loadAgent(file);
  if (!agent.mcp) throw new KeelError(`The agent ${agent.name} declares no MCP servers (its \`mcp\` option).`);
  const [{ withMcpTools }, { sharedMcpManager }] = await Promise.all([import('../../runtime/mcp/resolveTools.js'), import('../../runtime/mcp/mcpManager.js')]);
  const manager = sharedMcpManager();
  try {
    const resolved = await withMcpTools(agent, { connections: manager, agentFile, screen: true, flagged: 'report' });
    const flagged = new Map((resolved.flagged ?? []).map(({ tool, findings }) => [tool, findings.map((finding) => PATTERN_DESCRIPTIONS[finding.pattern])]));
    const servers: ServerRow[] = Object.entries(resolved.pin ?? {}).map(([name, server]) => ({ name, info: server.info, transport: server.transport, protocolVersion: server.protocolVersion }));
    const tools: ToolRow[] = [...resolved.agent.tools.values()].flatMap((tool) => {
      if (!tool.origin) return [];
      const pinned = resolved.pin?.[tool.origin.server]?.tools[tool.origin.tool];
      return [
        {
          server: tool.origin.server,
          tool: tool.name,
          mcpName: tool.origin.tool,
          effect: tool.effect,
          channel: tool.channel,
          schemaHash: pinned?.hash ?? '',
          description: tool.description,
          flagged: flagged.get(`${tool.origin.server}/${tool.origin.tool}`) ?? [],
        },
      ];
    });
    out.write(values.json ? `${JSON.stringify({ servers, tools }, null, 2)}\n` : `${listing(servers, tools)}\n`);
    return 0;
  } finally {
    await manager.close();
  }
}

async function loadAgent(file: string): Promise<{ agent: Agent; agentFile: string }> {
  const loaded = await loadAgentFile(file);
  return { agent: loaded.agent, agentFile: loaded.file };
}

/** Every server of the workspace's `.vscode/mcp.json`, as one agent would take them. */
function workspaceAgent(): { agent: Agent; agentFile: null } {
  const names = Object.keys(readMcpJson(findWorkspaceRoot(process.cwd())));
  if (names.length === 0) throw new KeelError('The workspace’s .vscode/mcp.json declares no servers.');
  const agent = defineAgent({ name: 'workspace', instructions: '', model: 'openai:none', mcp: { servers: Object.fromEntries(names.map((name) => [name, 'workspace' as const])) } });
  return { agent, agentFile: null };
}

function listing(servers: readonly ServerRow[], tools: readonly ToolRow[]): string {
  const lines: string[] = [];
  for (const server of servers) {
    const rows = tools.filter((tool) => tool.server === server.name);
    lines.push(`${style.bold(server.name)}  ${server.info.name} ${server.info.version} · ${server.transport} · MCP ${server.protocolVersion} · ${rows.length} tool${rows.length === 1 ? '' : 's'}`);
    const cells = rows.map((row) => [row.tool === row.mcpName ? row.tool : `${row.tool} (${row.mcpName})`, row.effect, row.channel, row.schemaHash.slice(0, 12), row.flagged.length > 0 ? style.yellow('flagged') : '']);
    const header = ['TOOL', 'EFFECT', 'CHANNEL', 'SCHEMA HASH', ''];
    const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => (cell[column] ?? '').replace(/\x1b\[\d+m/g, '').length)));
    const line = (cellsOfRow: readonly string[]) => `  ${cellsOfRow.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()}`;
    lines.push(style.dim(line(header)), ...cells.map(line));
    for (const row of rows.filter((candidate) => candidate.flagged.length > 0)) {
      lines.push(
        style.yellow(`  ${row.server}/${row.mcpName}: its description reads like a prompt injection (${row.flagged.join('; ')}):`),
        `    ${truncate(row.description, 600)}`,
        `    Accept it for a run with: keel run <file.agent.ts> --accept-mcp-tool ${row.server}/${row.mcpName} --input ...`,
      );
    }
  }
  return lines.join('\n');
}

export const mcpCommands: Readonly<Record<string, Command>> = {
  mcp: {
    usage: ['keel mcp ls [file.agent.ts] [--json]       MCP servers and their tools: effect, channel, schema hash'],
    run: (args) => {
      const [verb, ...rest] = args;
      if (verb === 'ls') return ls(rest);
      throw new UsageError(verb === undefined ? 'keel mcp needs a verb: keel mcp ls [file.agent.ts]' : `keel mcp knows no verb "${verb}"; try keel mcp ls.`);
    },
  },
};
