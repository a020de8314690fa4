import type { ToolChannel } from '../guard/config';
import type { Effect } from '../agent/toolContext';

/**
 * How an agent names MCP servers, in the shape of VS Code's `.vscode/mcp.json` entries, and which
 * of their tools it takes. Checked when the agent is defined; nothing connects until a run starts.
 */

/** A server Keel starts as a child process and speaks to over its stdin and stdout. */
export interface McpStdioServer {
  readonly type?: 'stdio';
  readonly command: string;
  readonly args?: readonly string[];
  /** Added to a small safe environment (PATH, HOME, USER...); values may use `${env:NAME}`. */
  readonly env?: Readonly<Record<string, string>>;
  /** The server's working folder; `${workspaceFolder}` may be used. Default: the workspace folder. */
  readonly cwd?: string;
}

/** A server reached over Streamable HTTP. */
export interface McpHttpServer {
  readonly type: 'http';
  readonly url: string;
  /** Sent with every request; secrets as `${env:NAME}`, resolved when connecting and never recorded. */
  readonly headers?: Readonly<Record<string, string>>;
}

export type McpServerConfig = McpStdioServer | McpHttpServer;

/**
 * A pattern naming MCP tools: `read_file`, `fs/read_file`, `fs/*` or `*_file`. `*` matches any
 * run of characters; without a `/` the pattern matches tools of every server.
 */
export type McpToolPattern = string;

export interface McpToolsConfig {
  /** Only tools matching one of these are offered to the model (default: all). */
  readonly allow?: readonly McpToolPattern[];
  /** Tools matching one of these are never offered, even if allowed. */
  readonly deny?: readonly McpToolPattern[];
  /** Overrides the effect the tool's annotations give, by pattern (`'fs/write_file': 'unsafe'`). */
  readonly effects?: Readonly<Record<McpToolPattern, Effect>>;
  /** Overrides the channel the tool's annotations give, by pattern. */
  readonly channels?: Readonly<Record<McpToolPattern, ToolChannel>>;
}

/** An agent's `mcp`. */
export interface McpConfig {
  /**
   * The servers, by the name the agent gives them: a stdio or HTTP server as in `.vscode/mcp.json`,
   * or `'workspace'` for the server of that name in the workspace's `.vscode/mcp.json`.
   */
  readonly servers: Readonly<Record<string, McpServerConfig | 'workspace'>>;
  readonly tools?: McpToolsConfig;
  /** Name each tool `server_tool` instead of `tool` (when two servers offer tools of one name). */
  readonly prefix?: boolean;
  /** How long one tool call may take before it fails. Default 60 s. */
  readonly timeoutMs?: number;
}

/** An agent's `mcp`, checked. */
export interface AgentMcp {
  readonly servers: Readonly<Record<string, McpServerConfig | 'workspace'>>;
  readonly allow: readonly McpToolPattern[] | null;
  readonly deny: readonly McpToolPattern[];
  readonly effects: Readonly<Record<McpToolPattern, Effect>>;
  readonly channels: Readonly<Record<McpToolPattern, ToolChannel>>;
  readonly prefix: boolean;
  readonly timeoutMs: number;
}

export const DEFAULT_MCP_TIMEOUT_MS = 60_000;
const SERVER_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const EFFECTS: readonly Effect[] = ['none', 'idempotent', 'unsafe'];
const CHANNELS: readonly ToolChannel[] = ['document', 'tool_output'];

/** Checks an agent's `mcp`; throws an Error saying what is wrong. */
export function resolveMcpConfig(config: McpConfig): AgentMcp {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error('`mcp` must be an object such as { servers: { fs: { command: "npx", args: [...] } } }.');
  }
  const servers = config.servers as unknown;
  if (typeof servers !== 'object' || servers === null || Array.isArray(servers) || Object.keys(servers).length === 0) {
    throw new Error('`mcp.servers` must name at least one server, such as { fs: { command: "npx", args: [...] } } or { github: "workspace" }.');
  }
  const checked: Record<string, McpServerConfig | 'workspace'> = {};
  for (const [name, server] of Object.entries(servers as Record<string, unknown>)) {
    if (!SERVER_NAME.test(name)) throw new Error(`\`mcp.servers\` names a server ${JSON.stringify(name)}; names are 1-32 letters, digits, '_' or '-'.`);
    checked[name] = server === 'workspace' ? 'workspace' : checkServer(server, `\`mcp.servers.${name}\``);
  }
  const tools = (config.tools ?? {}) as McpToolsConfig;
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools)) throw new Error('`mcp.tools` must be an object with allow, deny, effects or channels.');
  const timeoutMs = config.timeoutMs ?? DEFAULT_MCP_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error(`\`mcp.timeoutMs\` must be a whole number of at least 1 (got ${String(timeoutMs)}).`);
  if (config.prefix !== undefined && typeof config.prefix !== 'boolean') throw new Error('`mcp.prefix` must be true or false.');
  return Object.freeze({
    servers: Object.freeze(checked),
    allow: tools.allow === undefined ? null : patterns(tools.allow, '`mcp.tools.allow`'),
    deny: tools.deny === undefined ? [] : patterns(tools.deny, '`mcp.tools.deny`'),
    effects: byPattern(tools.effects, '`mcp.tools.effects`', EFFECTS),
    channels: byPattern(tools.channels, '`mcp.tools.channels`', CHANNELS),
    prefix: config.prefix === true,
    timeoutMs,
  });
}

/** Checks one server entry, from an agent or from `.vscode/mcp.json`; throws an Error naming `where`. */
export function checkServer(server: unknown, where: string): McpServerConfig {
  if (typeof server !== 'object' || server === null || Array.isArray(server)) {
    throw new Error(`${where} must be a server such as { command: "npx", args: [...] } or { type: "http", url: "https://..." }, or "workspace".`);
  }
  const entry = server as Record<string, unknown>;
  const type = entry['type'] ?? (typeof entry['url'] === 'string' ? 'http' : 'stdio');
  if (type === 'stdio') {
    if (typeof entry['command'] !== 'string' || entry['command'].trim() === '') throw new Error(`${where} needs a \`command\` to start the server.`);
    return Object.freeze({
      type: 'stdio',
      command: entry['command'],
      args: strings(entry['args'], `${where}.args`),
      ...(entry['env'] === undefined ? {} : { env: stringMap(entry['env'], `${where}.env`) }),
      ...(entry['cwd'] === undefined ? {} : { cwd: text(entry['cwd'], `${where}.cwd`) }),
    });
  }
  if (type === 'http') {
    const url = text(entry['url'], `${where}.url`);
    let parsed: URL;
    try {
      parsed = new URL(url.replace(/\$\{[^}]*\}/g, 'x'));
    } catch {
      throw new Error(`${where}.url is not a URL (got ${JSON.stringify(url)}).`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`${where}.url must be http:// or https:// (got ${JSON.stringify(url)}).`);
    return Object.freeze({ type: 'http', url, ...(entry['headers'] === undefined ? {} : { headers: stringMap(entry['headers'], `${where}.headers`) }) });
  }
  if (type === 'sse') throw new Error(`${where} is an SSE server; Keel speaks Streamable HTTP ("type": "http"), which replaced SSE in MCP.`);
  throw new Error(`${where}.type must be "stdio" or "http" (got ${JSON.stringify(type)}).`);
}

/** Whether `pattern` names tool `tool` of server `server`. */
export function matchesTool(pattern: McpToolPattern, server: string, tool: string): boolean {
  const slash = pattern.indexOf('/');
  const serverPart = slash < 0 ? '*' : pattern.slice(0, slash);
  const toolPart = slash < 0 ? pattern : pattern.slice(slash + 1);
  return glob(serverPart).test(server) && glob(toolPart).test(tool);
}

/** The value of the most specific pattern naming the tool: `fs/read_file` before `read_file` before `fs/*`. */
export function valueFor<T>(byPattern: Readonly<Record<McpToolPattern, T>>, server: string, tool: string): T | undefined {
  const matching = Object.keys(byPattern).filter((pattern) => matchesTool(pattern, server, tool));
  matching.sort((a, b) => specificity(b) - specificity(a));
  return matching.length === 0 ? undefined : byPattern[matching[0]!];
}

function specificity(pattern: string): number {
  return (pattern.includes('*') ? 0 : 2) + (pattern.includes('/') ? 1 : 0);
}

function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

function patterns(value: unknown, where: string): readonly string[] {
  const list = strings(value, where);
  for (const pattern of list) if (pattern.trim() === '' || pattern.split('/').length > 2) throw new Error(`${where} has ${JSON.stringify(pattern)}; patterns look like read_file, fs/read_file or fs/*.`);
  return list;
}

function byPattern<T extends string>(value: unknown, where: string, allowed: readonly T[]): Readonly<Record<string, T>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} must map tool patterns to values, such as { "fs/write_file": "unsafe" }.`);
  for (const [pattern, choice] of Object.entries(value)) {
    if (!allowed.includes(choice as T)) throw new Error(`${where}[${JSON.stringify(pattern)}] must be ${allowed.map((item) => `'${item}'`).join(' or ')} (got ${JSON.stringify(choice)}).`);
  }
  return Object.freeze({ ...(value as Record<string, T>) });
}

function strings(value: unknown, where: string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) throw new Error(`${where} must be a list of strings.`);
  return Object.freeze([...(value as string[])]);
}

function stringMap(value: unknown, where: string): Readonly<Record<string, string>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((item) => typeof item !== 'string')) {
    throw new Error(`${where} must map names to strings.`);
  }
  return Object.freeze({ ...(value as Record<string, string>) });
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new Error(`${where} must be a non-empty string.`);
  return value;
}
