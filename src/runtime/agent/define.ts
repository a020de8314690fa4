import { z } from 'zod';
import { AgentDefinitionError } from '../errors';
import { toPolicy, type ApprovalConfig, type ApprovalPolicy } from '../approval/policy';
import { compactArgs } from '../format';
import { DEFAULT_MODEL_RETRY, DEFAULT_TOOL_RETRY, retryPolicy, type RetryPolicy } from '../effects/retry';
import type { Model, ToolSpec } from '../model/model';

/**
 * What a tool does to the world, which decides what Keel may do when it is unsure whether a call
 * happened: `none` reads only; `idempotent` may be repeated with the same idempotency key;
 * `unsafe` must never be repeated blindly.
 */
export type Effect = 'none' | 'idempotent' | 'unsafe';
const EFFECTS: readonly Effect[] = ['none', 'idempotent', 'unsafe'];

export interface ToolContext {
  readonly runId: string;
  /** The journal step of the model call that asked for this tool call. */
  readonly stepId: number;
  /** Position of this call among the tool calls of that model step. */
  readonly callIndex: number;
  /** `{runId}:{stepId}:{callIndex}`: stable across retries and resumes; pass it to the API you call. */
  readonly idempotencyKey: string;
  readonly signal: AbortSignal;
  log(message: string): void;
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
  run(args: z.output<A>, ctx: ToolContext): Promise<z.input<O>> | z.input<O>;
}

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
}

// Symbol.for, so an agent built by another copy of keel-agents is still recognised.
export const AGENT = Symbol.for('keel.agent');
export const TOOL = Symbol.for('keel.tool');

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_MAX_STEPS = 10;

export function defineTool<A extends ArgsSchema, O extends z.ZodType = z.ZodUnknown>(config: ToolConfig<A, O>): Tool {
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
  const run = config.run;
  const describe = config.describe?.bind(config);
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
  for (const name of requiredTools) {
    if (typeof name !== 'string' || !tools.has(name)) {
      throw new AgentDefinitionError(`${where}: \`requiredTools\` names ${JSON.stringify(name)}, which is not one of the agent's tools.`);
    }
  }
  return Object.freeze({
    kind: AGENT,
    name: config.name,
    instructions: config.instructions,
    model: config.model,
    tools,
    maxSteps,
    modelRetry: withPolicy(where, () => retryPolicy(DEFAULT_MODEL_RETRY, config.modelRetry)),
    approval: toPolicy(config.approval, where),
    requiredTools: Object.freeze([...requiredTools]),
  });
}

export function isAgent(value: unknown): value is Agent {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === AGENT;
}

function isTool(value: unknown): value is Tool {
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

function withPolicy(where: string, build: () => RetryPolicy): RetryPolicy {
  try {
    return build();
  } catch (error) {
    throw new AgentDefinitionError(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
