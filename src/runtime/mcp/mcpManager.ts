import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { CircuitBreakers, type BreakerPolicy, type CircuitBreaker } from '../effects/circuitBreaker';
import { KeelError, describeError } from '../errors';
import { truncate } from '../format';
import { KEEL_VERSION } from '../version';
import type { McpConnections, McpServerRef, McpSession, McpToolCall, McpToolResult } from './connections';
import { normalDefinition, type McpServerFacts, type McpToolDefinition } from './definitions';
import type { McpServerSpec } from './serverSpec';
import { WatchedStdioTransport } from './stdioTransport';

/**
 * The MCP servers of one runtime process: started on first use, kept warm between calls and runs
 * (one per distinct launch, shared by the agents that declare it), started again after a crash
 * unless the server keeps crashing (its circuit breaker), and stopped with `close()`. Stdio servers
 * run under a watchdog that ends them when this process dies (see stdioTransport.ts).
 */

/** A server that crashes or fails to start in half of 4 or more attempts within a minute is left alone for 30 s. */
export const SERVER_BREAKER: BreakerPolicy = { windowMs: 60_000, minimumCalls: 4, failureRate: 0.5, cooldownMs: 30_000 };
/** How long starting a server and its handshake may take. */
const START_TIMEOUT_MS = 30_000;

/** A server that could not be started or did not finish its handshake: one sentence with the tail of its stderr. */
export class McpStartError extends KeelError {}

/** The server went away, or did not answer in time, after the call was sent: it may or may not have run. */
export class McpCallLostError extends KeelError {}

export interface McpManagerOptions {
  readonly breakers?: CircuitBreakers;
  readonly now?: () => number;
}

export class McpManager implements McpConnections {
  private readonly servers = new Map<string, ServerConnection>();
  private readonly breakers: CircuitBreakers;
  readonly accepted = new Set<string>();

  constructor(options: McpManagerOptions = {}) {
    this.breakers = options.breakers ?? new CircuitBreakers(SERVER_BREAKER, options.now);
  }

  async session(server: McpServerRef): Promise<McpSession> {
    const spec = server.spec();
    let connection = this.servers.get(spec.key);
    if (!connection) {
      connection = new ServerConnection(spec, this.breakers.for(`MCP server ${spec.name}`));
      this.servers.set(spec.key, connection);
    }
    await connection.ready();
    return connection;
  }

  /** Accepts flagged tool descriptions (`server/tool`) for runs started by this process. */
  accept(tools: Iterable<string>): void {
    for (const tool of tools) this.accepted.add(tool);
  }

  /** The process ids of the running stdio servers' watchdogs (each leads the server's own process group). */
  get pids(): number[] {
    return [...this.servers.values()].map((connection) => connection.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Stops every server; the manager can start them again later. */
  async close(): Promise<void> {
    const connections = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(connections.map((connection) => connection.close()));
  }
}

let shared: McpManager | undefined;

/** The process's manager: what a Runtime uses unless it is given another. */
export function sharedMcpManager(): McpManager {
  shared ??= new McpManager();
  return shared;
}

/** One server: its client and transport, replaced by new ones after a crash. */
class ServerConnection implements McpSession {
  private client: Client | undefined;
  private transport: WatchedStdioTransport | StreamableHTTPClientTransport | undefined;
  private connecting: Promise<Client> | undefined;
  private facts: McpServerFacts | undefined;
  private closing = false;

  constructor(
    private readonly spec: McpServerSpec,
    private readonly breaker: CircuitBreaker,
  ) {}

  get server(): McpServerFacts {
    if (!this.facts) throw new KeelError(`MCP server ${this.spec.name} is not connected.`);
    return this.facts;
  }

  get sessionId(): string | undefined {
    return this.transport instanceof StreamableHTTPClientTransport ? this.transport.sessionId : undefined;
  }

  get pid(): number | undefined {
    return this.transport instanceof WatchedStdioTransport ? this.transport.pid : undefined;
  }

  ready(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.closing = false;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  listTools(): Promise<readonly McpToolDefinition[]> {
    return this.inSession((client) => this.list(client));
  }

  private async list(client: Client): Promise<readonly McpToolDefinition[]> {
    const tools: McpToolDefinition[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: START_TIMEOUT_MS });
      tools.push(...page.tools.map((tool) => normalDefinition(tool as McpToolDefinition)));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return tools;
  }

  callTool(call: McpToolCall, signal: AbortSignal): Promise<McpToolResult> {
    return this.inSession((client) => this.send(client, call, signal));
  }

  /** Runs a request in the session; an HTTP server that forgot the session (it restarted) refused it unread: a new session, once. */
  private async inSession<T>(request: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await request(await this.ready());
    } catch (error) {
      if (!(error instanceof StreamableHTTPError && error.code === 404)) throw error;
      await this.drop();
      return request(await this.ready());
    }
  }

  private async send(client: Client, call: McpToolCall, signal: AbortSignal): Promise<McpToolResult> {
    try {
      const result = await client.callTool({ name: call.name, arguments: { ...call.arguments }, _meta: { ...call.meta } }, CallToolResultSchema, {
        signal,
        timeout: call.timeoutMs,
      });
      return result as McpToolResult;
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof McpError && (error.code === ErrorCode.ConnectionClosed || error.code === ErrorCode.RequestTimeout)) {
        const why = error.code === ErrorCode.RequestTimeout ? `did not answer within ${call.timeoutMs} ms` : `stopped during the call${this.stderrNote()}`;
        throw new McpCallLostError(`MCP server ${this.spec.name} ${why}.`, { cause: error, context: { transient: true } });
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.drop();
  }

  private async drop(): Promise<void> {
    const { client } = this;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  private async connect(): Promise<Client> {
    this.breaker.admit();
    const transport = this.transportFor();
    const client = new Client({ name: 'keel', version: KEEL_VERSION }, { capabilities: {} });
    let protocolVersion = '';
    const agreed = (transport as Transport).setProtocolVersion?.bind(transport);
    (transport as Transport).setProtocolVersion = (version: string) => {
      protocolVersion = version;
      agreed?.(version);
    };
    try {
      await client.connect(transport, { timeout: START_TIMEOUT_MS });
    } catch (error) {
      this.breaker.failed();
      await client.close().catch(() => undefined);
      throw new McpStartError(this.startFailure(error, transport), { cause: error });
    }
    this.breaker.succeeded();
    client.onclose = () => {
      if (this.client !== client) return;
      this.client = undefined;
      // A server that went away by itself crashed: it counts against its breaker, and the next call starts it again.
      if (!this.closing) this.breaker.failed();
    };
    const info = client.getServerVersion();
    const launch = this.spec.launch;
    const url = launch.type === 'http' ? new URL(launch.url) : undefined;
    this.facts = {
      info: { name: info?.name ?? this.spec.name, version: info?.version ?? '' },
      protocolVersion,
      transport: launch.type,
      ...(url ? { address: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) } : {}),
    };
    this.transport = transport;
    this.client = client;
    return client;
  }

  private transportFor(): WatchedStdioTransport | StreamableHTTPClientTransport {
    const launch = this.spec.launch;
    if (launch.type === 'http') return new StreamableHTTPClientTransport(new URL(launch.url), { requestInit: { headers: { ...launch.headers } } });
    return new WatchedStdioTransport({ command: launch.command, args: launch.args, env: { ...getDefaultEnvironment(), ...launch.env }, cwd: launch.cwd });
  }

  private startFailure(error: unknown, transport: WatchedStdioTransport | StreamableHTTPClientTransport): string {
    const launch = this.spec.launch;
    const what = launch.type === 'http' ? `MCP server ${this.spec.name} at ${launch.url} could not be reached` : `MCP server ${this.spec.name} (${launch.command}) could not be started`;
    const stderr = transport instanceof WatchedStdioTransport ? lastLines(transport.stderrTail) : '';
    const exited = transport instanceof WatchedStdioTransport ? transport.exited : undefined;
    const why = exited ? `it exited with ${exited.code === null ? `signal ${String(exited.signal)}` : `code ${exited.code}`}` : describeError(error);
    return `${what}: ${why}${stderr === '' ? '' : `; its stderr ends: ${stderr}`}`;
  }

  private stderrNote(): string {
    const stderr = this.transport instanceof WatchedStdioTransport ? lastLines(this.transport.stderrTail) : '';
    return stderr === '' ? '' : ` (its stderr ends: ${stderr})`;
  }
}

/** The last lines of a server's stderr, on one line. */
function lastLines(text: string): string {
  const lines = text.trim().split('\n').slice(-3).join(' | ');
  return truncate(lines.replace(/\s+/g, ' '), 400);
}
