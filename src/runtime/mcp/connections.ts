import type { McpServerFacts, McpToolDefinition, PinnedServer } from './definitions';
import type { McpServerSpec } from './serverSpec';

/**
 * Where MCP tools come from: the edge between Keel and MCP servers. The McpManager speaks to real
 * servers; golden replays serve recorded ones from a cassette; replays of recorded runs serve the
 * definitions the run pinned and never call anything.
 */

/** One of an agent's servers, as a run asks for it. */
export interface McpServerRef {
  /** The agent's name for the server. */
  readonly name: string;
  /** What to start or reach (filled in only when called: variables and secrets may be missing where nothing connects). */
  spec(): McpServerSpec;
  /** What the run recorded of the server, when it is resumed or replayed. */
  readonly pinned: PinnedServer | undefined;
}

export interface McpToolCall {
  readonly name: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Sent as the request's `_meta`: the idempotency key and the trace context. */
  readonly meta: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/** A `tools/call` result, as the protocol gives it. */
export interface McpToolResult {
  readonly content: readonly unknown[];
  readonly structuredContent?: Readonly<Record<string, unknown>>;
  readonly isError?: boolean;
}

export interface McpSession {
  readonly server: McpServerFacts;
  /** The protocol session's id (Streamable HTTP); undefined over stdio. */
  readonly sessionId: string | undefined;
  listTools(): Promise<readonly McpToolDefinition[]>;
  callTool(call: McpToolCall, signal: AbortSignal): Promise<McpToolResult>;
}

export interface McpConnections {
  session(server: McpServerRef): Promise<McpSession>;
  /**
   * Tools whose descriptions the injection screen flagged and a person accepted for runs started
   * in this process, as `server/tool`.
   */
  readonly accepted: ReadonlySet<string>;
}
