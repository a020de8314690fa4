import { canonicalJson } from '../hash/canonicalJson';
import { NonRetryableError } from '../effects/retry';
import { KeelError, describeError } from '../errors';
import type { McpConnections, McpServerRef, McpSession, McpToolCall, McpToolResult } from './connections';
import type { McpServerFacts, McpToolDefinition } from './definitions';

/**
 * MCP servers without a server: what a run pinned, for replays that never call anything, and
 * cassettes of golden cases, which record what servers offered and answered and play it back
 * offline.
 */

/** The servers a run pinned: their tools as they were, and every call refused (a replay never calls a server). */
export function pinnedConnections(): McpConnections {
  return {
    accepted: new Set(),
    session: (ref: McpServerRef) => {
      const pinned = ref.pinned;
      if (!pinned) return Promise.reject(new KeelError(`The recording holds nothing of MCP server ${ref.name}.`));
      return Promise.resolve({
        server: pinned,
        sessionId: undefined,
        listTools: () => Promise.resolve(Object.values(pinned.tools).map((tool) => tool.definition)),
        callTool: (call: McpToolCall) => Promise.reject(new KeelError(`A replay never calls MCP servers; ${ref.name}/${call.name} is not in the recording here.`)),
      });
    },
  };
}

/** What a golden case's MCP servers offered and answered, as its cassette keeps it. */
export interface RecordedMcp {
  readonly servers: Readonly<Record<string, { readonly server: McpServerFacts; readonly tools: readonly McpToolDefinition[] }>>;
  readonly calls: readonly RecordedMcpCall[];
}

export interface RecordedMcpCall {
  readonly server: string;
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** The server's answer, or the error the call failed with. */
  readonly result: McpToolResult | { readonly error: string };
}

/** Passes every session and call through to real servers, recording what they offer and answer. */
export class McpRecorder implements McpConnections {
  private readonly servers: Record<string, { server: McpServerFacts; tools: readonly McpToolDefinition[] }> = {};
  private readonly calls: RecordedMcpCall[] = [];

  constructor(private readonly inner: McpConnections) {}

  get accepted(): ReadonlySet<string> {
    return this.inner.accepted;
  }

  recording(): RecordedMcp {
    return structuredClone({ servers: this.servers, calls: this.calls });
  }

  async session(ref: McpServerRef): Promise<McpSession> {
    const session = await this.inner.session(ref);
    return {
      server: session.server,
      get sessionId() {
        return session.sessionId;
      },
      listTools: async () => {
        const tools = await session.listTools();
        this.servers[ref.name] = { server: session.server, tools };
        return tools;
      },
      callTool: async (call, signal) => {
        const recorded = { server: ref.name, tool: call.name, arguments: call.arguments };
        try {
          const result = await session.callTool(call, signal);
          this.calls.push({ ...recorded, result });
          return result;
        } catch (error) {
          this.calls.push({ ...recorded, result: { error: describeError(error) } });
          throw error;
        }
      },
    };
  }
}

/** A call or server the cassette holds nothing for: the case must be recorded again. */
export class McpCassetteMismatchError extends NonRetryableError {}

/** Serves a recording: each server's tools, and each call's answer by server, tool and arguments, in recorded order. */
export class McpPlayer implements McpConnections {
  readonly accepted: ReadonlySet<string>;
  private readonly used = new Set<number>();
  /** The first call the recording had no answer for. */
  mismatch: McpCassetteMismatchError | undefined;

  constructor(
    private readonly recording: RecordedMcp,
    private readonly rerecord: string,
  ) {
    this.accepted = new Set(Object.entries(recording.servers).flatMap(([name, { tools }]) => tools.map((tool) => `${name}/${tool.name}`)));
  }

  session(ref: McpServerRef): Promise<McpSession> {
    const recorded = this.recording.servers[ref.name];
    if (!recorded) return Promise.reject(this.mismatched(`the cassette holds no MCP server ${ref.name}`));
    return Promise.resolve({
      server: recorded.server,
      sessionId: undefined,
      listTools: () => Promise.resolve(recorded.tools),
      callTool: (call: McpToolCall) => this.play(ref.name, call),
    });
  }

  private play(server: string, call: McpToolCall): Promise<McpToolResult> {
    const wanted = canonicalJson(call.arguments);
    const index = this.recording.calls.findIndex(
      (candidate, at) => !this.used.has(at) && candidate.server === server && candidate.tool === call.name && canonicalJson(candidate.arguments) === wanted,
    );
    if (index < 0) return Promise.reject(this.mismatched(`the cassette holds no call of ${server}/${call.name} with the arguments ${wanted}`));
    this.used.add(index);
    const { result } = this.recording.calls[index]!;
    return 'error' in result ? Promise.reject(new NonRetryableError(result.error)) : Promise.resolve(result);
  }

  private mismatched(what: string): McpCassetteMismatchError {
    this.mismatch ??= new McpCassetteMismatchError(`Cassette mismatch: ${what}.\nRe-record it: ${this.rerecord}`);
    return this.mismatch;
  }
}
