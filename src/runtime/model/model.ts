/**
 * The conversation Keel keeps with a model, in a provider-neutral shape. Providers translate to and
 * from their own wire formats; the loop, the journal and the tests only ever see these types.
 */
export interface SystemMessage {
  readonly role: 'system';
  readonly content: string;
}

export interface UserMessage {
  readonly role: 'user';
  readonly content: string;
}

export interface ToolCall {
  /** The provider's id for the call, echoed back on the tool result. */
  readonly id: string;
  readonly name: string;
  /** The arguments exactly as the model wrote them: JSON text that may well be invalid. */
  readonly arguments: string;
}

export interface AssistantMessage {
  readonly role: 'assistant';
  readonly content: string | null;
  readonly toolCalls: readonly ToolCall[];
}

export interface ToolMessage {
  readonly role: 'tool';
  readonly toolCallId: string;
  readonly name: string;
  readonly content: string;
  readonly isError: boolean;
}

export type Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

/** A tool as offered to a model: name, description and a JSON Schema of its arguments. */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<Record<string, unknown>>;
}

export interface ModelRequest {
  readonly messages: readonly Message[];
  readonly tools: readonly ToolSpec[];
  /** The most output tokens the answer may have; a budgeted call's is what its budgets leave room for. */
  readonly maxTokens?: number;
  readonly temperature?: number;
}

export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'content_filter' | 'other';

export interface ModelResponse {
  readonly message: AssistantMessage;
  readonly finishReason: FinishReason;
  readonly usage: Usage;
  /** The model that actually answered, as the provider reports it. */
  readonly model: string;
  /** The provider's fingerprint of the configuration that answered (OpenAI's `system_fingerprint`), when it reports one. */
  readonly systemFingerprint?: string;
}

export interface ModelCallOptions {
  readonly signal?: AbortSignal;
  /** Called with each piece of text as it streams in, when the provider streams. */
  readonly onTextDelta?: (delta: string) => void;
}

export interface Model {
  /** Provider family, as in OpenTelemetry's `gen_ai.provider.name` (`openai`, `keel.scripted`). */
  readonly provider: string;
  /** The model id requested from the provider. */
  readonly name: string;
  generate(request: ModelRequest, options?: ModelCallOptions): Promise<ModelResponse>;
  /**
   * How many input tokens the provider will count for `request` (better a little more than less):
   * what a budgeted call reserves for its input. Without it Keel counts (see model/tokens.ts): with OpenAI's tokenizer
   * for `openai` models, else the request's size in bytes.
   */
  countInputTokens?(request: ModelRequest): number | Promise<number>;
}

/** `provider:name`, the form Keel shows and accepts on the command line. */
export function modelLabel(model: Model): string {
  return `${model.provider}:${model.name}`;
}
