import { z } from 'zod';
import { describeError } from '../errors';
import type { ToolCall } from '../model/model';
import type { Agent, Tool } from './define';

export type PreparedCall =
  | { readonly ok: true; readonly tool: Tool; readonly args: unknown }
  | { readonly ok: false; readonly error: string };

/**
 * Checks a tool call a model asked for before anything runs: the tool must exist and the
 * arguments must be JSON that matches its schema. What is wrong becomes an error the model reads
 * and can correct; it never ends the run.
 */
export function prepareToolCall(agent: Agent, call: ToolCall): PreparedCall {
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
  if (!args.success) return { ok: false, error: `Invalid arguments for ${tool.name}:\n${z.prettifyError(args.error)}` };
  return { ok: true, tool, args: args.data };
}

export type CheckedOutput = { readonly ok: true; readonly value: unknown; readonly content: string } | { readonly ok: false; readonly error: string };

/** Checks a tool's result against its output schema and renders it as the text the model reads. */
export function checkToolOutput(tool: Tool, value: unknown): CheckedOutput {
  let checked = value;
  if (tool.output) {
    const output = tool.output.safeParse(value);
    if (!output.success) {
      return { ok: false, error: `${tool.name} returned output that does not match its schema:\n${z.prettifyError(output.error)}` };
    }
    checked = output.data;
  }
  return { ok: true, value: checked, content: typeof checked === 'string' ? checked : (JSON.stringify(checked) ?? 'null') };
}
