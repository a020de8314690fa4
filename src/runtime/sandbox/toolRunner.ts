import type { Tool, ToolContext } from '../agent/define';
import { KeelError, describeError } from '../errors';
import { DEFAULT_SANDBOX_GRANT } from './grant';
import { ToolSandboxError } from './sandboxError';
import type { ToolSandbox } from './toolSandbox';

/** Which tools run in the sandbox: those marked `sandbox` in defineTool, or all of them. */
export type SandboxDefault = 'marked' | 'all';

export interface SandboxOptions {
  /** `marked` (the default) or `all`; the editor's `keel.sandbox.default` setting maps to it. */
  readonly default?: SandboxDefault;
  /** The sandbox to use. By default, one isolated-vm sandbox shared by the process, started on first use. */
  readonly implementation?: ToolSandbox;
}

/**
 * Runs a tool's code: directly in this process, or in the sandbox when the tool is marked
 * `sandbox` (or every tool is sandboxed). Retries, circuit breakers and idempotency keys stay
 * with the caller; this only decides where the code runs.
 */
export class ToolRunner {
  private readonly mode: SandboxDefault;
  private readonly implementation: ToolSandbox | undefined;

  constructor(options: SandboxOptions = {}) {
    if (options.default !== undefined && options.default !== 'marked' && options.default !== 'all') {
      throw new TypeError(`The sandbox default must be 'marked' or 'all' (got ${JSON.stringify(options.default)}).`);
    }
    this.mode = options.default ?? 'marked';
    this.implementation = options.implementation;
  }

  run(tool: Tool, args: unknown, ctx: ToolContext): Promise<unknown> {
    // An MCP tool's code is a call to its server, which runs in a process of its own.
    const grant = tool.sandbox ?? (this.mode === 'all' && !tool.origin ? DEFAULT_SANDBOX_GRANT : undefined);
    if (!grant) return tool.run(args, ctx);
    return (this.implementation ? Promise.resolve(this.implementation) : sharedSandbox()).then((sandbox) =>
      sandbox.run({ tool, grant, args, ctx }),
    );
  }
}

/**
 * The sandbox default from `KEEL_SANDBOX` (`marked` or `all`): how the CLI and the runtime process
 * learn it (the extension sets it from `keel.sandbox.default`). Throws a KeelError saying what is
 * wrong when it holds anything else.
 */
export function sandboxOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxOptions {
  const value = env['KEEL_SANDBOX']?.trim();
  if (value === undefined || value === '') return {};
  if (value !== 'marked' && value !== 'all') {
    throw new KeelError(`KEEL_SANDBOX must be "marked" (only tools marked sandbox run in it) or "all" (got ${JSON.stringify(value)}).`);
  }
  return { default: value };
}

let shared: Promise<ToolSandbox> | undefined;

/**
 * The process's isolated-vm sandbox. The native addon is loaded on the first sandboxed call, so a
 * process that never runs one never loads it; if it cannot be loaded (no prebuilt binary for this
 * Node), each sandboxed call fails with that reason and everything else keeps working.
 */
export function sharedSandbox(): Promise<ToolSandbox> {
  shared ??= import('./isolatedVmSandbox.js').then(
    ({ IsolatedVmSandbox }) => new IsolatedVmSandbox(),
    (error: unknown) => {
      shared = undefined;
      throw new ToolSandboxError(
        `it must run in the sandbox, but isolated-vm could not be loaded on Node ${process.version} (${describeError(error)})`,
        'unavailable',
        { cause: error },
      );
    },
  );
  return shared;
}
