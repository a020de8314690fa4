import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { KeelError, describeError } from '../errors';
import { findWorkspaceRoot } from '../workspace';
import { checkServer, type AgentMcp, type McpServerConfig } from './mcpConfig';

/**
 * A declared server made ready to connect: `${env:NAME}`, `${workspaceFolder}` and `${userHome}`
 * filled in, servers named `'workspace'` read from the workspace's `.vscode/mcp.json`. What is
 * filled in (secrets among it) lives only here, in memory; the run records the declaration as
 * written.
 */

export type McpLaunch =
  | { readonly type: 'stdio'; readonly command: string; readonly args: readonly string[]; readonly env: Readonly<Record<string, string>>; readonly cwd: string }
  | { readonly type: 'http'; readonly url: string; readonly headers: Readonly<Record<string, string>> };

export interface McpServerSpec {
  /** The agent's name for the server. */
  readonly name: string;
  /** The server as declared, before anything was filled in: safe to record and show. */
  readonly declared: McpServerConfig;
  /** Where it was declared: `agent`, or the path of the `.vscode/mcp.json` it came from. */
  readonly source: string;
  /** What to start or reach, secrets filled in. Never recorded. */
  readonly launch: McpLaunch;
  /** Identifies the launch (a hash, secrets included): servers with equal keys are one server. */
  readonly key: string;
}

/** A server declaration Keel cannot use: a missing variable, a broken `.vscode/mcp.json`... */
export class McpConfigError extends KeelError {}

/** The variables a declaration may use: the environment's, the workspace folder, the user's home. */
export interface McpVariables {
  readonly env: NodeJS.ProcessEnv;
  readonly workspaceFolder: string;
}

/** Where the agent's servers are declared from: the folder of its file (or the working folder). */
export function variablesFor(agentFile: string | null, env: NodeJS.ProcessEnv = process.env): McpVariables {
  const start = agentFile ? dirname(resolve(agentFile)) : process.cwd();
  return { env, workspaceFolder: findMcpJson(start) ?? findWorkspaceRoot(start) };
}

/** Every server of an agent, ready to connect; throws McpConfigError saying what is missing. */
export function serverSpecs(mcp: AgentMcp, variables: McpVariables): McpServerSpec[] {
  let workspaceServers: Readonly<Record<string, unknown>> | undefined;
  return Object.entries(mcp.servers).map(([name, entry]) => {
    if (entry !== 'workspace') return specOf(name, entry, 'agent', variables);
    workspaceServers ??= readMcpJson(variables.workspaceFolder);
    const path = mcpJsonPath(variables.workspaceFolder);
    const found = workspaceServers[name];
    if (found === undefined) {
      const names = Object.keys(workspaceServers);
      throw new McpConfigError(`The agent names MCP server "${name}" from the workspace, but ${path} has no server of that name${names.length > 0 ? ` (it has ${names.join(', ')})` : ''}.`);
    }
    let declared: McpServerConfig;
    try {
      declared = checkServer(found, `"${name}" in ${path}`);
    } catch (error) {
      throw new McpConfigError(describeError(error));
    }
    return specOf(name, declared, path, variables);
  });
}

function specOf(name: string, declared: McpServerConfig, source: string, variables: McpVariables): McpServerSpec {
  const fill = (text: string, where: string) => substitute(text, variables, `MCP server "${name}"`, where);
  const fillAll = (values: Readonly<Record<string, string>> | undefined, where: string) =>
    Object.fromEntries(Object.entries(values ?? {}).map(([key, value]) => [key, fill(value, `${where} ${key}`)]));
  const launch: McpLaunch =
    declared.type === 'http'
      ? { type: 'http', url: fill(declared.url, 'url'), headers: fillAll(declared.headers, 'header') }
      : {
          type: 'stdio',
          command: fill(declared.command, 'command'),
          args: (declared.args ?? []).map((arg) => fill(arg, 'arguments')),
          env: fillAll(declared.env, 'env'),
          cwd: resolve(variables.workspaceFolder, fill(declared.cwd ?? variables.workspaceFolder, 'cwd')),
        };
  return { name, declared, source, launch, key: sha256(canonicalJson(launch)) };
}

const VARIABLE = /\$\{([^}]*)\}/g;

function substitute(text: string, variables: McpVariables, server: string, where: string): string {
  return text.replace(VARIABLE, (whole, inner: string) => {
    if (inner === 'workspaceFolder') return variables.workspaceFolder;
    if (inner === 'userHome') return homedir();
    if (inner.startsWith('env:')) {
      const name = inner.slice(4);
      const value = variables.env[name];
      if (value === undefined) throw new McpConfigError(`${server} needs the environment variable ${name} (\${env:${name}} in its ${where}), which is not set.`);
      return value;
    }
    if (inner.startsWith('input:')) {
      throw new McpConfigError(`${server} asks for ${whole} in its ${where}; Keel runs without prompts: put the value in an environment variable and write \${env:NAME}.`);
    }
    throw new McpConfigError(`${server} uses ${whole} in its ${where}; Keel knows \${env:NAME}, \${workspaceFolder} and \${userHome}.`);
  });
}

function mcpJsonPath(folder: string): string {
  return join(folder, '.vscode', 'mcp.json');
}

function findMcpJson(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(mcpJsonPath(dir))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The `servers` of a workspace's `.vscode/mcp.json` (JSON with comments, as VS Code writes it). */
export function readMcpJson(workspaceFolder: string): Readonly<Record<string, unknown>> {
  const path = mcpJsonPath(workspaceFolder);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new McpConfigError(`The agent names an MCP server from the workspace, but there is no ${path}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(withoutComments(text));
  } catch (error) {
    throw new McpConfigError(`${path} is not valid JSON: ${describeError(error)}.`);
  }
  const servers = (parsed as { servers?: unknown } | null)?.servers;
  if (typeof servers !== 'object' || servers === null || Array.isArray(servers)) throw new McpConfigError(`${path} has no "servers" object.`);
  return servers as Record<string, unknown>;
}

/** JSON with `//` and block comments and trailing commas, as plain JSON (strings left alone). */
export function withoutComments(text: string): string {
  let result = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === '"') {
      const end = stringEnd(text, index);
      result += text.slice(index, end);
      index = end - 1;
    } else if (char === '/' && text[index + 1] === '/') {
      while (index < text.length && text[index] !== '\n') index++;
      result += '\n';
    } else if (char === '/' && text[index + 1] === '*') {
      const close = text.indexOf('*/', index + 2);
      index = close < 0 ? text.length : close + 1;
      result += ' ';
    } else if (char !== ',' || !/^\s*[}\]]/.test(text.slice(index + 1, index + 200))) {
      result += char;
    }
  }
  return result;
}

function stringEnd(text: string, start: number): number {
  for (let index = start + 1; index < text.length; index++) {
    if (text[index] === '\\') index++;
    else if (text[index] === '"') return index + 1;
  }
  return text.length;
}
