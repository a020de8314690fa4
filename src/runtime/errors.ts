/**
 * Every error Keel raises on purpose is a KeelError: its message is a sentence meant for a person,
 * and `context` carries the facts behind it for logs.
 */
export class KeelError extends Error {
  readonly context: Readonly<Record<string, unknown>>;

  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.context = options.context ?? {};
  }
}

/** Something the user's file defines is malformed; the message says what and where, without a stack. */
export class DefinitionError extends KeelError {}

/** A mistake in keel.config.ts (or in a value that overrides one of its keys): one sentence, nothing runs. */
export class ConfigError extends DefinitionError {}

/**
 * A run cannot go on for now: it waits for something outside it (a person's decision, a sub-agent
 * that stopped). Not a failure: a pause passes through retries, circuit breakers and any wrapper
 * unchanged, and stops the run as paused or interrupted, never as failed.
 */
export class RunPausedError extends KeelError {}

/** An agent or tool definition is malformed (bad name, missing schema, duplicate tool...). */
export class AgentDefinitionError extends DefinitionError {}

/** An agent file could not be bundled, evaluated or does not export an agent. */
export class AgentLoadError extends KeelError {
  constructor(
    message: string,
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(message, { ...options, context: { file, line, column } });
  }
}

/** The run database cannot be used as it is (corrupt, not Keel's, or from a newer Keel). */
export class StoreError extends KeelError {}

/** A model provider failed or is misconfigured. */
export class ModelError extends KeelError {}

/** A string naming a model (`openai:gpt-4o-mini`) could not be understood. */
export class ModelSpecError extends KeelError {}

/** Turns anything thrown into one line fit for a person. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
