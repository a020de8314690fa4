import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { z } from 'zod';
import { DEFAULT_MAX_OUTPUT_BYTES, TOOL, type Effect, type Tool, type ToolContext } from '../agent/define';
import { AttemptInterruptedError } from '../agent/steps';
import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { CircuitOpenError } from '../effects/circuitBreaker';
import { DEFAULT_TOOL_RETRY, NonRetryableError, RetryableError, classifyError } from '../effects/retry';
import { describeError } from '../errors';
import { compactArgs } from '../format';
import type { ToolChannel } from '../guard/config';
import type { McpConnections, McpServerRef, McpSession, McpToolResult } from './connections';
import type { McpToolDefinition } from './definitions';
import { McpCallLostError } from './mcpManager';
import { McpConfigError } from './serverSpec';
import { MCP_SERVER_ATTRIBUTE } from '../../shared/spanAttributes';

/**
 * An MCP server's tool as a Keel tool: the model's arguments are checked against the tool's JSON
 * Schema (a model that breaks it reads the same correctable error as with a zod tool), the call
 * carries its idempotency key and trace context in `_meta`, and its result becomes the text the
 * model reads. Effects, retries, breakers, approvals, the journal and the guard treat it as any tool.
 */

export interface McpToolOptions {
  /** The tool's name in the agent (the MCP name, or `server_tool`). */
  readonly name: string;
  readonly server: McpServerRef;
  readonly definition: McpToolDefinition;
  readonly connections: McpConnections;
  readonly effect: Effect;
  readonly channel: ToolChannel;
  readonly timeoutMs: number;
}

/** The `_meta` key of the idempotency key Keel sends with every call. */
export const IDEMPOTENCY_META_KEY = 'keel/idempotencyKey';

/** The effect the tool's annotations give: read-only is `none`, idempotent is `idempotent`, anything else `unsafe`. */
export function effectOf(definition: McpToolDefinition): Effect {
  if (definition.annotations?.readOnlyHint === true) return 'none';
  if (definition.annotations?.idempotentHint === true) return 'idempotent';
  return 'unsafe';
}

/** Content from a tool that reaches an open world (MCP's default) is a third party's: `document`. */
export function channelOf(definition: McpToolDefinition): ToolChannel {
  return definition.annotations?.openWorldHint === false ? 'tool_output' : 'document';
}

export function mcpTool(options: McpToolOptions): Tool {
  const { name, server, definition, connections, effect, timeoutMs } = options;
  const validate = validatorFor(definition, server.name);
  const { $schema: _dialect, ...parameters } = definition.inputSchema;
  const properties = typeof parameters['properties'] === 'object' && parameters['properties'] !== null ? Object.keys(parameters['properties']) : [];
  const args = z
    .object(Object.fromEntries(properties.map((property) => [property, z.unknown().optional()])))
    .loose()
    .superRefine((value, ctx) => {
      if (validate(value)) return;
      for (const error of validate.errors ?? []) ctx.addIssue({ code: 'custom', message: issueMessage(error), path: issuePath(error) });
    });
  const description = definition.description?.trim() || definition.title || definition.annotations?.title || `${definition.name} (from MCP server ${server.name})`;
  return Object.freeze({
    kind: TOOL,
    name,
    description,
    args,
    output: undefined,
    effect,
    retry: DEFAULT_TOOL_RETRY,
    approval: { rules: [] },
    describe: (value: unknown) => compactArgs(value),
    spec: { name, description, parameters: { type: 'object', ...parameters } },
    sandbox: undefined,
    source: '',
    module: undefined,
    maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
    channel: options.channel,
    untrusted: Object.freeze({}),
    origin: Object.freeze({ kind: 'mcp' as const, server: server.name, tool: definition.name }),
    run: (value: unknown, ctx: ToolContext) => call(value as Record<string, unknown>, ctx),
  });

  async function call(value: Record<string, unknown>, ctx: ToolContext): Promise<unknown> {
    ctx.annotate({ 'mcp.method.name': 'tools/call', [MCP_SERVER_ATTRIBUTE]: server.name, 'keel.mcp.tool': definition.name });
    let session: McpSession;
    try {
      session = await connections.session(server);
    } catch (error) {
      // Nothing was sent: a server that will not start is the model's to hear about, not to wait for.
      if (error instanceof CircuitOpenError) throw error;
      throw new NonRetryableError(describeError(error), { cause: error });
    }
    ctx.annotate(sessionAttributes(session));
    let result: McpToolResult;
    try {
      result = await session.callTool(
        { name: definition.name, arguments: value, meta: { [IDEMPOTENCY_META_KEY]: ctx.idempotencyKey, traceparent: ctx.traceparent }, timeoutMs },
        ctx.signal,
      );
    } catch (error) {
      throw callFailure(error, effect, ctx.signal);
    }
    const text = resultText(result);
    if (result.isError === true) {
      ctx.annotate({ 'error.type': 'tool_error' });
      throw new NonRetryableError(text === '' ? `MCP server ${server.name} reported an error with no text.` : text);
    }
    return text;
  }
}

/** What the span of a call says of the session it went through, in the MCP semantic conventions' names. */
function sessionAttributes(session: McpSession): Record<string, string | number> {
  const { server } = session;
  const attributes: Record<string, string | number> = {
    'mcp.protocol.version': server.protocolVersion,
    'network.transport': server.transport === 'stdio' ? 'pipe' : 'tcp',
  };
  if (server.transport === 'http') attributes['network.protocol.name'] = 'http';
  if (server.address !== undefined) attributes['server.address'] = server.address;
  if (server.port !== undefined) attributes['server.port'] = server.port;
  if (session.sessionId !== undefined) attributes['mcp.session.id'] = session.sessionId;
  return attributes;
}

/**
 * A failed call as the loop should take it. A call the server may have run before it went away
 * is, for an unsafe tool, an interrupted attempt: a person decides, as after a crash. Protocol
 * errors are the model's to read; transient failures of other tools are retried.
 */
function callFailure(error: unknown, effect: Effect, signal: AbortSignal): unknown {
  if (signal.aborted || error instanceof CircuitOpenError) return error;
  if (error instanceof McpCallLostError) return effect === 'unsafe' ? new AttemptInterruptedError(error.message, { cause: error }) : error;
  const classified = classifyError(error, DEFAULT_TOOL_RETRY);
  if (classified.class === 'retry') {
    // A connection refused never carried the call; anything else may have, after the request left.
    if (effect !== 'unsafe' || classified.reason === 'ECONNREFUSED') return new RetryableError(describeError(error), { cause: error });
    return new AttemptInterruptedError(`the call to the MCP server failed after it was sent (${describeError(error)})`, { cause: error });
  }
  return new NonRetryableError(describeError(error), { cause: error });
}

/** The text the model reads: text blocks as they are, other content named, structured content when there is nothing else. */
export function resultText(result: McpToolResult): string {
  const parts = result.content.map(blockText).filter((part) => part !== '');
  if (parts.length === 0 && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return parts.join('\n');
}

function blockText(block: unknown): string {
  const item = (typeof block === 'object' && block !== null ? block : {}) as Record<string, unknown>;
  const text = (key: string) => (typeof item[key] === 'string' ? item[key] : '');
  switch (item['type']) {
    case 'text':
      return text('text');
    case 'image':
    case 'audio':
      return `[${String(item['type'])} ${text('mimeType')}, ${Math.floor((text('data').length * 3) / 4)} bytes, not shown]`;
    case 'resource_link':
      return `[resource ${text('uri')}${text('name') === '' ? '' : ` (${text('name')})`}]`;
    case 'resource': {
      const resource = (typeof item['resource'] === 'object' && item['resource'] !== null ? item['resource'] : {}) as Record<string, unknown>;
      if (typeof resource['text'] === 'string') return resource['text'];
      return `[resource ${String(resource['uri'] ?? '')}${typeof resource['mimeType'] === 'string' ? ` ${resource['mimeType']}` : ''}, not shown]`;
    }
    default:
      return `[${String(item['type'] ?? 'unknown')} content, not shown]`;
  }
}

const validators = new Map<string, ValidateFunction>();
const MAX_VALIDATORS = 1000;

/** A validator of the tool's input schema, in the JSON Schema dialect it names (2020-12 by default, as MCP says). */
function validatorFor(definition: McpToolDefinition, server: string): ValidateFunction {
  const key = sha256(canonicalJson(definition.inputSchema));
  const known = validators.get(key);
  if (known) return known;
  const { $schema: dialect, ...schema } = definition.inputSchema;
  const ajv = ajvFor(typeof dialect === 'string' ? dialect : '');
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (error) {
    throw new McpConfigError(
      `MCP server ${server} offers ${definition.name} with an input schema Keel cannot use (${describeError(error)}); leave the tool out with mcp.tools.deny.`,
    );
  }
  if (validators.size >= MAX_VALIDATORS) validators.delete(validators.keys().next().value ?? '');
  validators.set(key, validate);
  return validate;
}

function ajvFor(dialect: string): Ajv {
  const options = { strict: false, allErrors: true, logger: false } as const;
  const ajv = dialect.includes('2019-09') ? new Ajv2019(options) : dialect === '' || dialect.includes('2020-12') ? new Ajv2020(options) : new Ajv(options);
  addFormats(ajv);
  return ajv;
}

function issuePath(error: ErrorObject): (string | number)[] {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  const missing = (error.params as { missingProperty?: unknown }).missingProperty;
  if (error.keyword === 'required' && typeof missing === 'string') path.push(missing);
  return path;
}

function issueMessage(error: ErrorObject): string {
  if (error.keyword === 'required') return 'Required';
  const params = error.params as { additionalProperty?: unknown; allowedValues?: unknown };
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') return `Unrecognized key: "${params.additionalProperty}"`;
  if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) return `Invalid option: expected one of ${params.allowedValues.map((value) => JSON.stringify(value)).join('|')}`;
  return `Invalid input: ${error.message ?? error.keyword}`;
}
