/**
 * Token counts as OpenAI's API reports them, for the local test server to play a provider whose
 * usage is real: prompt tokens as its cookbook counts a chat request for o200k_base models (3 per
 * message plus its role and content, tool calls' names and arguments, the tool definitions in the
 * TypeScript-like form the model is shown, 3 priming the answer), and completion tokens of an
 * answer, cut to `max_completion_tokens` as the API cuts it.
 */
import { countTokens, decode, encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { ChatCompletionCreateParams } from 'openai/resources/chat/completions';

const PLAIN = { disallowedSpecial: new Set<string>() };

export function tokensOf(text: string): number {
  return countTokens(text, PLAIN);
}

export function openaiPromptTokens(body: ChatCompletionCreateParams): number {
  let total = 3;
  for (const message of body.messages) {
    total += 3 + tokensOf(message.role);
    const content = message.content;
    if (typeof content === 'string') total += tokensOf(content);
    else if (Array.isArray(content)) for (const part of content) if ('text' in part) total += tokensOf(part.text);
    if (message.role === 'assistant') {
      for (const call of message.tool_calls ?? []) if (call.type === 'function') total += 3 + tokensOf(call.function.name) + tokensOf(call.function.arguments);
    }
    if (message.role === 'tool') total += tokensOf(message.tool_call_id);
  }
  const functions = (body.tools ?? []).flatMap((tool) => (tool.type === 'function' ? [tool.function] : []));
  if (functions.length > 0) {
    const rendered = functions.map((fn) => {
      const properties = Object.entries((fn.parameters?.['properties'] ?? {}) as Record<string, { type?: string; description?: string }>);
      const args = properties.map(([name, schema]) => `${schema.description ? `// ${schema.description}\n` : ''}${name}: ${schema.type ?? 'any'},`).join('\n');
      return `// ${fn.description ?? ''}\ntype ${fn.name} = (_: {\n${args}\n}) => any;`;
    });
    total += tokensOf(`# Tools\n\n## functions\n\nnamespace functions {\n\n${rendered.join('\n\n')}\n\n} // namespace functions`);
  }
  return total;
}

/** The completion tokens of an answer's text and tool calls. */
export function completionTokens(answer: { readonly content?: string; readonly toolCalls?: readonly { name: string; arguments: string }[] }): number {
  return tokensOf(answer.content ?? '') + (answer.toolCalls ?? []).reduce((sum, call) => sum + tokensOf(call.name) + tokensOf(call.arguments), 0);
}

/** The first `maxTokens` tokens of a text. */
export function firstTokens(text: string, maxTokens: number): string {
  return decode(encode(text, PLAIN).slice(0, maxTokens));
}

/** The output limit a request sent, whichever field carried it. */
export function maxTokensOf(body: ChatCompletionCreateParams): number | undefined {
  return body.max_completion_tokens ?? body.max_tokens ?? undefined;
}
