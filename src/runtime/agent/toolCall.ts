import { z } from 'zod';
import { describeError } from '../errors';
import { formatBytes } from '../format';
import { asksConfidence } from '../approval/policy';
import type { ToolCall, ToolSpec } from '../model/model';
import type { ToolResultGuard } from '../guard/record';
import type { Agent, Tool } from './define';

export type PreparedCall =
  | { readonly ok: true; readonly tool: Tool; readonly args: unknown; readonly confidence: number | undefined }
  | { readonly ok: false; readonly error: string };

const CONFIDENCE = 'confidence';

/** Whether the model is asked to say how sure it is with each call of this tool (for approval rules). */
export function asksForConfidence(agent: Agent, tool: Tool): boolean {
  return asksConfidence(tool.approval, agent.approval) && !(CONFIDENCE in tool.args.shape);
}

/** The tool as offered to the model: its own schema, plus `confidence` when approval rules read it. */
export function offeredSpec(agent: Agent, tool: Tool): ToolSpec {
  if (!asksForConfidence(agent, tool)) return tool.spec;
  const parameters = tool.spec.parameters as { properties?: Record<string, unknown>; required?: string[] };
  return {
    ...tool.spec,
    parameters: {
      ...parameters,
      properties: {
        ...parameters.properties,
        [CONFIDENCE]: {
          type: 'number',
          minimum: 0,
          maximum: 1,
          description: 'How sure you are, from 0 to 1, that this call is right and needed.',
        },
      },
      required: [...(parameters.required ?? []), CONFIDENCE],
    },
  };
}

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
  let confidence: number | undefined;
  if (asksForConfidence(agent, tool) && typeof raw === 'object' && raw !== null && CONFIDENCE in raw) {
    const { [CONFIDENCE]: stated, ...rest } = raw as Record<string, unknown>;
    confidence = typeof stated === 'number' && stated >= 0 && stated <= 1 ? stated : undefined;
    raw = rest;
  }
  const args = tool.args.safeParse(raw);
  if (!args.success) return { ok: false, error: `Invalid arguments for ${tool.name}:\n${z.prettifyError(args.error)}` };
  return { ok: true, tool, args: args.data, confidence };
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
  let content: string;
  try {
    content = typeof checked === 'string' ? checked : (JSON.stringify(checked) ?? 'null');
  } catch (error) {
    return { ok: false, error: `${tool.name} returned output that cannot be written as JSON (${describeError(error)}).` };
  }
  const limit = tool.maxOutputBytes;
  // Each UTF-16 unit is at least one byte of UTF-8 and at most three, so most outputs need no counting.
  if (content.length > limit || (content.length * 3 > limit && Buffer.byteLength(content) > limit)) {
    return {
      ok: false,
      error: `${tool.name} returned ${formatBytes(Buffer.byteLength(content))} of output, more than its limit of ${formatBytes(limit)} (maxOutputBytes).`,
    };
  }
  return { ok: true, value: checked, content };
}

/** Attributes a tool added to its span (MCP's, say), as its step's output records them. */
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** What a tool threw, as OpenTelemetry names an exception: its class and its stack's frames (its message is the step's error), capped as the message is. */
export interface ToolException {
  readonly type: string;
  readonly stacktrace: string;
}

/**
 * What becomes of one tool call, as the model will read it; `attributes` are what the tool added to
 * its span, `exception` what it threw when it failed by throwing.
 */
export type ToolResult = CheckedOutput & ToolResultGuard & { readonly attributes?: SpanAttributes; readonly exception?: ToolException };
