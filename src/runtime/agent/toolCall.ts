import { z } from 'zod';
import { describeError } from '../errors';
import type { ToolCall } from '../model/model';
import type { Agent, ToolContext } from './define';

export type ToolOutcome =
  | { readonly ok: true; readonly value: unknown; readonly content: string }
  | { readonly ok: false; readonly error: string };

/**
 * Executes one tool call a model asked for. Whatever goes wrong (an unknown tool, arguments that
 * are not JSON or do not match the schema, a tool that throws, output that breaks its schema)
 * becomes an error the model reads and can correct; it never ends the run. Only cancellation
 * propagates.
 */
export async function executeToolCall(agent: Agent, call: ToolCall, ctx: ToolContext): Promise<ToolOutcome> {
  const tool = agent.tools.get(call.name);
  if (!tool) {
    const names = [...agent.tools.keys()];
    return {
      ok: false,
      error: `There is no tool named "${call.name}". ${names.length ? `Available tools: ${names.join(', ')}.` : 'This agent has no tools.'}`,
    };
  }
  let raw: unknown;
  try {
    raw = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
  } catch (error) {
    return {
      ok: false,
      error: `The arguments for ${tool.name} are not valid JSON (${describeError(error)}). Send one JSON object that matches the tool's schema.`,
    };
  }
  const args = tool.args.safeParse(raw);
  if (!args.success) {
    return { ok: false, error: `Invalid arguments for ${tool.name}:\n${z.prettifyError(args.error)}` };
  }
  let value: unknown;
  try {
    value = await tool.run(args.data, ctx);
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    return { ok: false, error: `${tool.name} failed: ${describeError(error)}` };
  }
  if (tool.output) {
    const output = tool.output.safeParse(value);
    if (!output.success) {
      return {
        ok: false,
        error: `${tool.name} returned output that does not match its schema:\n${z.prettifyError(output.error)}`,
      };
    }
    value = output.data;
  }
  return { ok: true, value, content: typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null') };
}
