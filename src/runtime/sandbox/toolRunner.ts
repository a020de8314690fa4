import type { Tool, ToolContext } from '../agent/define';
import { KeelError } from '../errors';
import { DEFAULT_SANDBOX_GRANT } from './grant';
import { SANDBOX_TIERS, type SandboxTier } from './tier';
import { capErrorText } from './sandboxError';
import type { ToolSandbox } from './toolSandbox';

/** Which tools run in the sandbox: those marked `sandbox` in defineTool, or all of them. */
export type SandboxDefault = 'marked' | 'all';

export interface SandboxOptions {
  /** Which tools run in the sandbox: `marked` (the default: those marked `sandbox` in defineTool) or `all` (`sandbox.default` of the configuration). */
  readonly default?: SandboxDefault;
  /** The tier of sandboxed tools that do not choose one in defineTool (and of every tool under `all`). Default `isolate`. */
  readonly tier?: SandboxTier;
  /** The sandbox of each tier. By default, ones shared by the process, started on first use. */
  readonly sandboxes?: Partial<Record<SandboxTier, ToolSandbox>>;
}

/**
 * Runs a tool's code: directly in this process, or in the sandbox of its tier when the tool is
 * marked `sandbox` (or every tool is sandboxed). Retries, circuit breakers and idempotency keys
 * stay with the caller; this only decides where the code runs. Whatever a tool throws, its
 * message is cut to MAX_ERROR_CHARS here (sandboxed tools' messages are cut before they leave
 * the sandbox), so no tool can make the runtime store or send a message of any size.
 */
export class ToolRunner {
  private readonly mode: SandboxDefault;
  private readonly tier: SandboxTier;
  private readonly sandboxes: Partial<Record<SandboxTier, ToolSandbox>>;

  constructor(options: SandboxOptions = {}) {
    if (options.default !== undefined && options.default !== 'marked' && options.default !== 'all') {
      throw new TypeError(`The sandbox default must be 'marked' or 'all' (got ${JSON.stringify(options.default)}).`);
    }
    if (options.tier !== undefined && !SANDBOX_TIERS.includes(options.tier)) {
      throw new TypeError(`The sandbox tier must be 'isolate', 'process' or 'os' (got ${JSON.stringify(options.tier)}).`);
    }
    this.mode = options.default ?? 'marked';
    this.tier = options.tier ?? 'isolate';
    this.sandboxes = options.sandboxes ?? {};
  }

  async run(tool: Tool, args: unknown, ctx: ToolContext): Promise<unknown> {
    // An MCP tool's code is a call to its server, which runs in a process of its own.
    const grant = tool.sandbox ?? (this.mode === 'all' && !tool.origin ? DEFAULT_SANDBOX_GRANT : undefined);
    try {
      if (!grant) return await tool.run(args, ctx);
      const tier = grant.tier ?? this.tier;
      return await (this.sandboxes[tier] ?? (await sharedSandbox(tier))).run({ tool, grant, args, ctx });
    } catch (error) {
      throw capped(error);
    }
  }
}

/** The error with its message cut to MAX_ERROR_CHARS (the same error, so that its class and code still decide retries). */
function capped(error: unknown): unknown {
  if (!(error instanceof Error) || typeof error.message !== 'string') return typeof error === 'string' ? capErrorText(error) : error;
  const message = capErrorText(error.message);
  if (message === error.message) return error;
  try {
    Object.defineProperty(error, 'message', { value: message, writable: true, configurable: true, enumerable: false });
    Object.defineProperty(error, 'stack', { value: `${error.name}: ${message}`, writable: true, configurable: true, enumerable: false });
    return error;
  } catch {
    return new KeelError(message);
  }
}

const shared = new Map<SandboxTier, Promise<ToolSandbox>>();

/**
 * The process's sandbox of a tier, made on first use, its module loaded then too (a process whose
 * tools run directly never evaluates the sandboxes, esbuild or Node's http and child processes).
 * The isolate tier's workers load isolated-vm themselves, so this process never does; if they
 * cannot (no prebuilt binary for this Node), each call of that tier fails saying so and everything
 * else keeps working.
 */
export function sharedSandbox(tier: SandboxTier): Promise<ToolSandbox> {
  let sandbox = shared.get(tier);
  if (!sandbox) {
    sandbox =
      tier === 'isolate'
        ? import('./isolateSandbox.js').then(({ IsolateSandbox }) => new IsolateSandbox())
        : import('./processSandbox.js').then(({ ProcessSandbox }) => new ProcessSandbox({ tier }));
    shared.set(tier, sandbox);
  }
  return sandbox;
}
