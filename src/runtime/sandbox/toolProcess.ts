/**
 * A tool's own process (dist/toolProcess.js), for the process and OS tiers: it reads one call
 * from fd 3, loads the module that defines the tool (an agent file, through the same loader as
 * the runtime), runs the tool with Node and its npm packages at hand, writes how it ended to fd 3,
 * and exits. In the OS tier it runs inside the OS sandbox, whose only way out to the network is
 * the runtime's egress proxy: it relays a loopback port of its own network namespace to the
 * proxy's socket, and HTTP(S)_PROXY (with NODE_USE_ENV_PROXY) point Node's clients there.
 */
import { createRequire } from 'node:module';
import { connect, createServer, Socket } from 'node:net';
import { deserialize } from 'node:v8';
import { isAgent, isTool, type Tool, type ToolContext } from '../agent/define';
import { loadAgentFile } from '../agent/loader';
import { AgentLoadError, describeError } from '../errors';
import { frame, FrameReader } from './frames';
import { EGRESS_PORT, EGRESS_SOCKET } from './osSandbox';
import { MAX_ERROR_CHARS } from './sandboxError';
import type { CallOutcome, FromToolProcess, ToolProcessCall } from './workerProtocol';

const channel = new Socket({ fd: 3, readable: true, writable: true });

function send(message: FromToolProcess): void {
  channel.write(frame(Buffer.from(JSON.stringify(message))));
}

const reader = new FrameReader(
  Number.MAX_SAFE_INTEGER,
  (payload) => void start(deserialize(payload) as ToolProcessCall),
  () => undefined,
);
channel.on('data', (chunk: Buffer) => reader.push(chunk));
channel.on('error', () => process.exit(1));

async function start(call: ToolProcessCall): Promise<void> {
  const outcome = await invoke(call);
  channel.end(frame(Buffer.from(JSON.stringify({ type: 'done', outcome } satisfies FromToolProcess))), () => process.exit(0));
}

async function invoke(call: ToolProcessCall): Promise<CallOutcome> {
  if (call.egress) await relayEgress();
  let tool: Tool;
  try {
    tool = await findTool(call.module, call.tool);
  } catch (error) {
    return { kind: 'stopped', stop: 'code', message: `its process could not load it from ${call.module} (${describeError(error)})` };
  }
  const refuse = (): Promise<never> => Promise.reject(new Error('a sandboxed tool has no memory, progress notes or sub-agents'));
  const ctx: ToolContext & { fetch: typeof fetch } = {
    ...call.meta,
    signal: new AbortController().signal,
    log: (message) => send({ type: 'log', message: String(message) }),
    annotate: (attributes) => send({ type: 'annotate', attributes }),
    fetch: globalThis.fetch,
    subAgent: refuse,
    memory: { get: refuse, put: refuse, search: refuse, delete: refuse, list: refuse },
    progress: { taskId: null, get: refuse, update: refuse },
  };
  send({ type: 'started' });
  try {
    return outcomeOf(await tool.run(call.args, ctx), call.maxOutputBytes);
  } catch (error) {
    return thrownOf(error);
  }
}

/** The tool named `name` that `file` defines: among the tools of the agent it exports, or among its exports. */
async function findTool(file: string, name: string): Promise<Tool> {
  let exported: unknown;
  try {
    exported = { default: (await loadAgentFile(file)).agent };
  } catch (error) {
    if (!(error instanceof AgentLoadError) || !/does not export an agent|exports several agents/.test(error.message)) throw error;
    exported = createRequire(file)(file);
  }
  for (const value of Object.values((exported ?? {}) as Record<string, unknown>)) {
    if (isTool(value) && value.name === name) return value;
    const found = isAgent(value) ? value.tools.get(name) : undefined;
    if (found) return found;
  }
  throw new Error(`it defines no tool named ${name} that it exports, or that an agent it exports uses`);
}

function outcomeOf(value: unknown, maxBytes: number): CallOutcome {
  if (value === undefined) return { kind: 'none' };
  let text: string | undefined;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch (error) {
    return { kind: 'unclonable', message: describeError(error).slice(0, 500) };
  }
  if (text === undefined) return { kind: 'none' };
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) return { kind: 'over', bytes, atLeast: false };
  return { kind: typeof value === 'string' ? 'text' : 'json', text };
}

function thrownOf(error: unknown): CallOutcome {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const cut = Math.max(0, message.length - MAX_ERROR_CHARS);
  return {
    kind: 'threw',
    name: error instanceof Error ? error.name : undefined,
    message: cut > 0 ? message.slice(0, MAX_ERROR_CHARS) : message,
    cut,
    code: typeof code === 'string' ? code : undefined,
  };
}

/** Relays the proxy port of this network namespace's loopback to the egress proxy's socket. */
function relayEgress(): Promise<void> {
  const relay = createServer((client) => {
    const upstream = connect(EGRESS_SOCKET);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  relay.unref();
  return new Promise((resolve, reject) => {
    relay.once('error', reject);
    relay.listen(EGRESS_PORT, '127.0.0.1', resolve);
  });
}
