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
  | 'unavailable'
  /** The process the call ran in died under it (isolated-vm gave up on an isolate, or the OS killed it). */
  | 'crash';

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

/**
 * The most characters of a tool's error message that Keel keeps. The rest is cut where the error
 * arises (inside the sandbox, for sandboxed tools), so a tool cannot make the runtime store, send
 * or show a message of any size.
 */
export const MAX_ERROR_CHARS = 16 * 1024;

/** The kept start of a message and a note of how much was cut, when `cut` characters were. */
export function withCutNote(kept: string, cut: number): string {
  return cut > 0 ? `${kept}… (${cut} more characters of this message were cut)` : kept;
}

/** Room for the note after the kept characters, so that a message cut once is not cut again. */
const CUT_NOTE_ROOM = 100;

/** `text` itself, or its first MAX_ERROR_CHARS characters and a note of how many more there were. */
export function capErrorText(text: string): string {
  return text.length > MAX_ERROR_CHARS + CUT_NOTE_ROOM ? withCutNote(text.slice(0, MAX_ERROR_CHARS), text.length - MAX_ERROR_CHARS) : text;
}
