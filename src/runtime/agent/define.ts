import { z } from 'zod';
import { AgentDefinitionError } from '../errors';
import { toPolicy, type ApprovalConfig, type ApprovalPolicy } from '../approval/policy';
import { compactArgs } from '../format';
import { DEFAULT_MODEL_RETRY, DEFAULT_TOOL_RETRY, retryPolicy, type RetryPolicy } from '../effects/retry';
import { checkLimits, type BudgetLimits } from '../budget/budget';
import type { PriceTable } from '../budget/prices';
import type { Message, Model, ToolMessage, ToolSpec } from '../model/model';
import { sandboxGrant, type SandboxConfig, type SandboxGrant, type SandboxToolContext } from '../sandbox/grant';
import { callerFile } from '../sandbox/toolModule';
import {
  resolveChannel,
  resolveGuard,
  resolveTrust,
  resolveUntrusted,
  type GuardConfig,
  type ResolvedGuard,
  type ToolChannel,
  type ToolTrust,
  type TrustRule,
  type UntrustedAction,
  type UntrustedPolicy,
} from '../guard/config';
import {
  DEFAULT_THREAD_WINDOW,
  type AgentMemory,
  type MemoryConfig,
  type ThreadConfig,
  type ThreadWindow,
} from '../memory/memory';
import { checkNamespace } from '../memory/memoryStore';
import { resolveMcpConfig, type AgentMcp, type McpConfig } from '../mcp/mcpConfig';
import type { Effect, ToolCallContext } from './toolContext';

export type { Effect };

const EFFECTS: readonly Effect[] = ['none', 'idempotent', 'unsafe'];

export interface ToolContext extends ToolCallContext {
  /**
   * Runs another agent as a sub-agent: its own run, linked to this one (same trace, nested in the
   * Runs view), drawing on this run's budgets. Resolves with its answer. When this call runs
   * again (a retry, a resume), it continues that same sub-agent run instead of starting another.
   */
  subAgent(agent: Agent, input: string): Promise<string>;
}

type ArgsSchema = z.ZodObject;

export interface ToolConfig<A extends ArgsSchema, O extends z.ZodType> {
  readonly name: string;
  readonly description: string;
  readonly args: A;
  readonly output?: O;
  readonly effect: Effect;
  /** How failures of this tool are retried (same idempotency key each time). */
  readonly retry?: Partial<RetryPolicy>;
  /** When a call needs a person's approval first, such as approvals.amountOver(500). */
  readonly approval?: ApprovalConfig;
  /** The call in a few words for the person asked to approve it: `$640 NYC→LIS`. */
  describe?(args: z.output<A>): string;
  /** The most bytes of output (as the model reads it) a call may return; more is a tool error. Default 1 MB. */
  readonly maxOutputBytes?: number;
  /** Set `sandbox` to run this tool in the sandbox (see SandboxedToolConfig). */
  readonly sandbox?: false;
  /**
   * What the tool's results are: `document` for content a third party wrote (a web page, an email
   * body, a file, search results), `tool_output` (the default) for results of your own systems.
   * Both are fenced as data for the model; documents are trusted least.
   */
  readonly channel?: ToolChannel;
  /**
   * What a call of this tool does when its arguments carry values found only in untrusted content;
   * overrides the agent's `guard.untrusted`. A read-only tool (`effect: 'none'`) follows only its
   * own: set it on one that sends a URL or query the model picks, such as a page fetcher.
   */
  readonly untrusted?: UntrustedPolicy;
  /** Whether the tool's results are the user's own or from a source the user named, so that values in them may direct side effects (see ToolTrust). */
  readonly trust?: ToolTrust;
  run(args: z.output<A>, ctx: ToolContext): Promise<z.input<O>> | z.input<O>;
}

/**
 * A tool whose code runs in the sandbox, with a memory limit, a CPU limit and a time limit, and
 * only what it is granted; `ctx.fetch` reaches only the hosts of the `egress` allow-list. In the
 * isolate tier (the default) it has no Node APIs and `run` must be self-contained: it is moved into
 * an isolate as its own source text, so it can use its arguments, `ctx` and JavaScript's built-ins,
 * and nothing else from the agent file. In the process and OS tiers (`tier: 'process' | 'os'`) it
 * runs in a Node process of its own that loads the agent file, with Node and npm packages.
 */
export interface SandboxedToolConfig<A extends ArgsSchema, O extends z.ZodType> extends Omit<ToolConfig<A, O>, 'sandbox' | 'run'> {
  /** `true` for the defaults (the default tier, no network, 32 MB, 1000 ms of CPU, 10 s in all), or the tier and what to grant. */
  readonly sandbox: true | SandboxConfig;
  run(args: z.output<A>, ctx: SandboxToolContext): Promise<z.input<O>> | z.input<O>;
}

/** The output limit of tools that do not set `maxOutputBytes`. */
export const DEFAULT_MAX_OUTPUT_BYTES = 2 ** 20;

export interface Tool {
  readonly kind: typeof TOOL;
  readonly name: string;
  readonly description: string;
  readonly args: ArgsSchema;
  readonly output: z.ZodType | undefined;
  readonly effect: Effect;
  readonly retry: RetryPolicy;
  readonly approval: ApprovalPolicy;
  /** The call in a few words for a person. */
  describe(args: unknown): string;
  /** The JSON Schema of the arguments, as offered to models. */
  readonly spec: ToolSpec;
  /** What the sandbox grants this tool, when it is marked `sandbox`. */
  readonly sandbox: SandboxGrant | undefined;
  /** The source text of `run`: the script the isolate tier runs. */
  readonly source: string;
  /** The file that called defineTool: where the process and OS tiers load the tool from. */
  readonly module: string | undefined;
  readonly maxOutputBytes: number;
  /** What the tool's results are, for the untrusted-content defenses. */
  readonly channel: ToolChannel;
  /** The tool's own `untrusted` actions, by channel; the agent's apply where it sets none. */
  readonly untrusted: Readonly<Partial<Record<ToolChannel, UntrustedAction>>>;
  /** Where the tool comes from when it is not the agent's own code: an MCP server's tool (which never runs in the sandbox). */
  readonly origin?: { readonly kind: 'mcp'; readonly server: string; readonly tool: string };
  /** Whose word a call's results are, when the tool is trusted. */
  readonly trust?: TrustRule | undefined;
  run(args: unknown, ctx: ToolContext): Promise<unknown>;
}

export interface AgentConfig {
  readonly name: string;
  readonly instructions: string;
  /** A model, or a spec such as `openai:gpt-4o-mini`. */
  readonly model: Model | string;
  readonly tools?: readonly Tool[];
  /** The most model calls a run may make before it fails for want of a final answer. Default 10. */
  readonly maxSteps?: number;
  /** How failed model calls are retried. */
  readonly modelRetry?: Partial<RetryPolicy>;
  /** When any tool call needs a person's approval first; a tool's own rules apply too. */
  readonly approval?: ApprovalConfig;
  /** Tools a run must use: a run that ends without a successful call of each is flagged. */
  readonly requiredTools?: readonly string[];
  /** What a run may spend: tokens, money, steps, time. Runs can tighten it. */
  readonly budget?: BudgetLimits;
  /** The most output tokens one model call may use (sent to the model, and reserved). Default 4096. */
  readonly maxOutputTokens?: number;
  /** Prices of models this agent uses, added to (and overriding) Keel's table. */
  readonly prices?: PriceTable;
  /** Picks the model for each model call: a cheaper one for simple steps. Undefined keeps the agent's. */
  readonly route?: (step: RouteStep) => Model | string | undefined;
  /** Stops a run that loops: the same call N times (default 3), or N model calls without a new call (default 5). */
  readonly loopLimits?: { readonly sameCall?: number; readonly turnsWithoutProgress?: number };
  /** Long-term memory: the namespaces the agent uses, memory tools for the model, an embedder for semantic search. */
  readonly memory?: MemoryConfig;
  /** How much of a thread's earlier turns a run of it starts with, and the model that summarizes older ones. */
  readonly thread?: ThreadConfig;
  /** Defenses against untrusted content (fencing, the injection screen, taint checks, answer sanitizing); `false` turns them off. */
  readonly guard?: GuardConfig | false;
  /** Tools from MCP servers, declared as in `.vscode/mcp.json`; they join the agent's tools when a run starts. */
  readonly mcp?: McpConfig;
}

/** What a route hook sees: the turn about to be taken. */
export interface RouteStep {
  /** 0 for the first model call. */
  readonly turn: number;
  readonly input: string;
  readonly messages: readonly Message[];
  /** Tool results since the last model call. */
  readonly toolResults: readonly ToolMessage[];
}

export interface Agent {
  readonly kind: typeof AGENT;
  readonly name: string;
  readonly instructions: string;
  readonly model: Model | string;
  readonly tools: ReadonlyMap<string, Tool>;
  readonly maxSteps: number;
  readonly modelRetry: RetryPolicy;
  readonly approval: ApprovalPolicy;
  readonly requiredTools: readonly string[];
  readonly budget: BudgetLimits | undefined;
  readonly maxOutputTokens: number;
  readonly prices: PriceTable;
  readonly route: ((step: RouteStep) => Model | string | undefined) | undefined;
  readonly loopLimits: { readonly sameCall: number; readonly turnsWithoutProgress: number };
  readonly memory: AgentMemory | undefined;
  readonly thread: ThreadWindow;
  readonly guard: ResolvedGuard;
  readonly mcp: AgentMcp | undefined;
}

// Symbol.for, so an agent built by another copy of keel-agents is still recognised.
export const AGENT = Symbol.for('keel.agent');
export const TOOL = Symbol.for('keel.tool');

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_MAX_STEPS = 10;

export function defineTool<A extends ArgsSchema, O extends z.ZodType = z.ZodUnknown>(config: SandboxedToolConfig<A, O>): Tool;
export function defineTool<A extends ArgsSchema, O extends z.ZodType = z.ZodUnknown>(config: ToolConfig<A, O>): Tool;
export function defineTool<A extends ArgsSchema, O extends z.ZodType>(config: ToolConfig<A, O> | SandboxedToolConfig<A, O>): Tool {
  const where = `defineTool(${typeof config?.name === 'string' ? JSON.stringify(config.name) : ''})`;
  if (typeof config !== 'object' || config === null) throw new AgentDefinitionError('defineTool needs an object.');
  checkName(config.name, where);
  if (typeof config.description !== 'string' || config.description.trim() === '') {
    throw new AgentDefinitionError(`${where}: \`description\` must be a non-empty string; models choose tools by it.`);
  }
  if (!(config.args instanceof z.ZodObject)) {
    throw new AgentDefinitionError(`${where}: \`args\` must be a zod object schema, such as z.object({ city: z.string() }).`);
  }
  if (config.output !== undefined && !(config.output instanceof z.ZodType)) {
    throw new AgentDefinitionError(`${where}: \`output\` must be a zod schema when given.`);
  }
  if (!EFFECTS.includes(config.effect)) {
    throw new AgentDefinitionError(
      `${where}: \`effect\` must be 'none', 'idempotent' or 'unsafe' (got ${JSON.stringify(config.effect)}).`,
    );
  }
  if (typeof config.run !== 'function') throw new AgentDefinitionError(`${where}: \`run\` must be a function.`);
  const { $schema: _ignored, ...parameters } = z.toJSONSchema(config.args, { io: 'input', unrepresentable: 'any' });
  // A sandboxed tool's run only ever runs in the sandbox, which gives it the fetch its type promises.
  const run = config.run as (args: z.output<A>, ctx: ToolContext) => Promise<z.input<O>> | z.input<O>;
  const describe = config.describe?.bind(config);
  const source = Function.prototype.toString.call(run);
  const marked = config.sandbox === undefined || config.sandbox === false ? undefined : config.sandbox;
  const sandbox = marked === undefined ? undefined : withPolicy(where, () => sandboxGrant(marked));
  if (sandbox && (sandbox.tier ?? 'isolate') === 'isolate' && /\[native code\]\s*\}$/.test(source)) {
    throw new AgentDefinitionError(
      `${where}: a sandboxed tool's \`run\` must be a plain function written out (not bound or native): its source is what runs in the sandbox.`,
    );
  }
  const maxOutputBytes = config.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 1) {
    throw new AgentDefinitionError(`${where}: \`maxOutputBytes\` must be a whole number of at least 1 (got ${String(maxOutputBytes)}).`);
  }
  return Object.freeze({
    kind: TOOL,
    name: config.name,
    description: config.description,
    args: config.args,
    output: config.output,
    effect: config.effect,
    retry: withPolicy(where, () => retryPolicy(DEFAULT_TOOL_RETRY, config.retry)),
    approval: toPolicy(config.approval, where),
    describe: (args: unknown): string => (describe ? describe(args as z.output<A>) : compactArgs(args)),
    spec: { name: config.name, description: config.description, parameters },
    sandbox,
    source,
    module: callerFile(defineTool),
    maxOutputBytes,
    channel: withPolicy(where, () => resolveChannel(config.channel)),
    untrusted: Object.freeze(withPolicy(where, () => resolveUntrusted(config.untrusted, '`untrusted`'))),
    trust: withPolicy(where, () => resolveTrust(config.trust, '`trust`')),
    run: async (args: unknown, ctx: ToolContext): Promise<unknown> => run(args as z.output<A>, ctx),
  });
}

export function defineAgent(config: AgentConfig): Agent {
  if (typeof config !== 'object' || config === null) throw new AgentDefinitionError('defineAgent needs an object.');
  checkName(config.name, 'defineAgent');
  const where = `defineAgent(${JSON.stringify(config.name)})`;
  if (typeof config.instructions !== 'string') {
    throw new AgentDefinitionError(`${where}: \`instructions\` must be a string.`);
  }
  if (typeof config.model !== 'string' && !isModel(config.model)) {
    throw new AgentDefinitionError(
      `${where}: \`model\` must be a model (such as scriptedModel(...)) or a spec such as 'openai:gpt-4o-mini'.`,
    );
  }
  const maxSteps = config.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) {
    throw new AgentDefinitionError(`${where}: \`maxSteps\` must be a whole number of at least 1 (got ${String(maxSteps)}).`);
  }
  const tools = new Map<string, Tool>();
  for (const tool of config.tools ?? []) {
    if (!isTool(tool)) throw new AgentDefinitionError(`${where}: every entry of \`tools\` must come from defineTool().`);
    if (tools.has(tool.name)) throw new AgentDefinitionError(`${where}: two tools are named "${tool.name}".`);
    tools.set(tool.name, tool);
  }
  const requiredTools = config.requiredTools ?? [];
  if (!Array.isArray(requiredTools)) throw new AgentDefinitionError(`${where}: \`requiredTools\` must be a list of tool names.`);
  const mcp = config.mcp === undefined ? undefined : withPolicy(where, () => resolveMcpConfig(config.mcp as McpConfig));
  for (const name of requiredTools) {
    // A tool an MCP server offers is known only when a run starts; it is checked then.
    if (typeof name !== 'string' || (!tools.has(name) && !mcp)) {
      throw new AgentDefinitionError(`${where}: \`requiredTools\` names ${JSON.stringify(name)}, which is not one of the agent's tools.`);
    }
  }
  const agent: Agent = Object.freeze({
    kind: AGENT,
    name: config.name,
    instructions: config.instructions,
    model: config.model,
    tools,
    maxSteps,
    modelRetry: withPolicy(where, () => retryPolicy(DEFAULT_MODEL_RETRY, config.modelRetry)),
    approval: toPolicy(config.approval, where),
    budget: config.budget === undefined ? undefined : withPolicy(where, () => checkLimits(config.budget ?? {}, 'budget')),
    maxOutputTokens: positiveInteger(config.maxOutputTokens ?? 4096, `${where}: \`maxOutputTokens\``),
    prices: config.prices ?? {},
    route: config.route,
    loopLimits: {
      sameCall: positiveInteger(config.loopLimits?.sameCall ?? 3, `${where}: \`loopLimits.sameCall\``),
      turnsWithoutProgress: positiveInteger(config.loopLimits?.turnsWithoutProgress ?? 5, `${where}: \`loopLimits.turnsWithoutProgress\``),
    },
    requiredTools: Object.freeze([...requiredTools]),
    memory: memoryOf(config.memory, tools, where),
    thread: threadOf(config.thread, where),
    guard: withPolicy(where, () => resolveGuard(config.guard, [...tools.keys()])),
    mcp,
  });
  collecting?.push(agent);
  return agent;
}

/** The agents defined while `collectDefinedAgents` runs its function, in order. */
let collecting: Agent[] | undefined;

/** Runs `evaluate` (evaluating an agent file, say) and returns what it returned with every agent it defined. */
export function collectDefinedAgents<T>(evaluate: () => T): { readonly value: T; readonly agents: readonly Agent[] } {
  const outer = collecting;
  const agents: Agent[] = [];
  collecting = agents;
  try {
    return { value: evaluate(), agents };
  } finally {
    collecting = outer;
  }
}

/** Tool names Keel's memory tools use: an agent with memory tools cannot have its own of these names. */
const MEMORY_TOOL_NAMES = ['memory_search', 'memory_get', 'memory_put', 'memory_delete'];

function memoryOf(config: MemoryConfig | undefined, tools: ReadonlyMap<string, Tool>, where: string): AgentMemory | undefined {
  if (config === undefined) return undefined;
  if (typeof config !== 'object' || config === null) throw new AgentDefinitionError(`${where}: \`memory\` must be an object.`);
  const namespaces = config.namespaces === undefined ? null : config.namespaces;
  if (namespaces !== null) {
    if (!Array.isArray(namespaces) || namespaces.length === 0) {
      throw new AgentDefinitionError(`${where}: \`memory.namespaces\` must be a non-empty list, such as ['user:ada', 'project'].`);
    }
    for (const namespace of namespaces) withPolicy(where, () => checkNamespace(typeof namespace === 'string' && namespace.endsWith('*') ? `${namespace.slice(0, -1)}x` : namespace));
  }
  if (config.tools === true) {
    if (namespaces === null) throw new AgentDefinitionError(`${where}: memory tools need \`memory.namespaces\`: the namespaces the model may use.`);
    const taken = MEMORY_TOOL_NAMES.find((name) => tools.has(name));
    if (taken) throw new AgentDefinitionError(`${where}: the agent has a tool of its own named ${taken}, which memory tools use; rename it.`);
  }
  const embedder = config.embedder;
  if (embedder !== undefined && (typeof embedder !== 'object' || embedder === null || typeof embedder.embed !== 'function' || typeof embedder.name !== 'string')) {
    throw new AgentDefinitionError(`${where}: \`memory.embedder\` must have a \`name\` and an \`embed(texts)\` function.`);
  }
  return Object.freeze({ namespaces: namespaces === null ? null : Object.freeze([...namespaces]), tools: config.tools === true, embedder });
}

function threadOf(config: ThreadConfig | undefined, where: string): ThreadWindow {
  if (config === undefined) return DEFAULT_THREAD_WINDOW;
  if (typeof config !== 'object' || config === null) throw new AgentDefinitionError(`${where}: \`thread\` must be an object.`);
  if (config.summaryModel !== undefined && typeof config.summaryModel !== 'string' && !isModel(config.summaryModel)) {
    throw new AgentDefinitionError(`${where}: \`thread.summaryModel\` must be a model or a spec such as 'openai:gpt-4o-mini'.`);
  }
  return Object.freeze({
    maxMessages: positiveInteger(config.maxMessages ?? DEFAULT_THREAD_WINDOW.maxMessages, `${where}: \`thread.maxMessages\``),
    maxTokens: positiveInteger(config.maxTokens ?? DEFAULT_THREAD_WINDOW.maxTokens, `${where}: \`thread.maxTokens\``),
    toolExchanges: config.toolExchanges === true,
    summaryModel: config.summaryModel,
  });
}

export function isAgent(value: unknown): value is Agent {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === AGENT;
}

export function isTool(value: unknown): value is Tool {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === TOOL;
}

function isModel(value: unknown): value is Model {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Model).generate === 'function' &&
    typeof (value as Model).name === 'string'
  );
}

function checkName(name: unknown, where: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AgentDefinitionError(
      `${where}: \`name\` must be 1-64 letters, digits, '_' or '-' (got ${JSON.stringify(name)}).`,
    );
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new AgentDefinitionError(`${what} must be a whole number of at least 1 (got ${String(value)}).`);
  return value;
}

function withPolicy<T>(where: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    throw new AgentDefinitionError(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
