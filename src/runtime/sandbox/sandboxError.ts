import { NonRetryableError } from '../effects/retry';

/** Why the sandbox stopped or refused a tool call. */
export type SandboxStop =
  | 'cpu'
  | 'memory'
  | 'timeout'
  | 'stack'
  | 'egress'
  | 'code'
  | 'arguments'
  | 'output'
  | 'unavailable';

/**
 * The sandbox stopped a tool call, or could not run it. The message completes "<tool> failed: "
 * (`it exceeded its 50 ms CPU limit, so the sandbox stopped it`). Trying again cannot help, so it
 * is never retried.
 */
export class ToolSandboxError extends NonRetryableError {
  constructor(
    message: string,
    readonly stop: SandboxStop,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, { ...options, context: { ...options.context, stop } });
  }
}

/** A sandboxed tool tried to reach something its egress allow-list does not permit. */
export class EgressDeniedError extends ToolSandboxError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super(message, 'egress', { context });
  }
}
