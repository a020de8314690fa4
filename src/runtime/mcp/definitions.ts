import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { truncate } from '../format';
import type { ScreenFinding } from '../guard/screen';

/**
 * What an MCP server offers, as Keel records it: each tool's definition (name, description, input
 * and output schema, annotations) and its hash. A run pins the definitions it started with, so
 * that a resume or a replay that meets another definition stops and says what changed.
 */

export interface McpToolAnnotations {
  readonly title?: string;
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

export interface McpToolDefinition {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly outputSchema?: Readonly<Record<string, unknown>>;
  readonly annotations?: McpToolAnnotations;
}

/** A server as a session with it found it. */
export interface McpServerFacts {
  /** The server's own name and version (its `serverInfo`). */
  readonly info: { readonly name: string; readonly version: string };
  readonly protocolVersion: string;
  readonly transport: 'stdio' | 'http';
  /** Host and port of an HTTP server. */
  readonly address?: string;
  readonly port?: number;
}

/** One tool as a run pinned it. */
export interface PinnedTool {
  readonly hash: string;
  readonly definition: McpToolDefinition;
  /** What the injection screen found in its description, when it found something a person accepted. */
  readonly flagged?: readonly ScreenFinding[];
}

/** One server as a run pinned it: its facts and the tools the agent took from it, by their MCP names. */
export interface PinnedServer extends McpServerFacts {
  readonly tools: Readonly<Record<string, PinnedTool>>;
}

/** What a run records of its MCP servers when it starts, by the agent's names for them. */
export type McpPin = Readonly<Record<string, PinnedServer>>;

/** The definition with only the fields that make it, so that extra fields a server adds change nothing. */
export function normalDefinition(tool: McpToolDefinition): McpToolDefinition {
  return {
    name: tool.name,
    ...(tool.title === undefined ? {} : { title: tool.title }),
    ...(tool.description === undefined ? {} : { description: tool.description }),
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema }),
    ...(tool.annotations === undefined ? {} : { annotations: tool.annotations }),
  };
}

export function definitionHash(tool: McpToolDefinition): string {
  return sha256(canonicalJson(normalDefinition(tool)));
}

/** What differs between a pinned definition and the one a server offers now, in a few words each. */
export function describeChange(before: McpToolDefinition, after: McpToolDefinition): string[] {
  const changes: string[] = [];
  if ((before.description ?? '') !== (after.description ?? '')) {
    changes.push(`its description changed from ${quote(before.description)} to ${quote(after.description)}`);
  }
  if ((before.title ?? '') !== (after.title ?? '')) changes.push(`its title changed from ${quote(before.title)} to ${quote(after.title)}`);
  const schema = schemaChanges(before.inputSchema, after.inputSchema);
  if (schema.length > 0) changes.push(`its input schema changed (${schema.join('; ')})`);
  if (canonicalJson(before.outputSchema ?? null) !== canonicalJson(after.outputSchema ?? null)) changes.push('its output schema changed');
  const hints = annotationChanges(before.annotations ?? {}, after.annotations ?? {});
  if (hints.length > 0) changes.push(`its annotations changed (${hints.join(', ')})`);
  return changes;
}

function quote(text: string | undefined): string {
  return text === undefined || text === '' ? 'nothing' : JSON.stringify(truncate(text, 120));
}

function schemaChanges(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): string[] {
  const props = (schema: Readonly<Record<string, unknown>>) => (schema['properties'] ?? {}) as Record<string, unknown>;
  const required = (schema: Readonly<Record<string, unknown>>) => new Set(Array.isArray(schema['required']) ? (schema['required'] as string[]) : []);
  const was = props(before);
  const now = props(after);
  const changes: string[] = [];
  for (const name of Object.keys(now)) if (!(name in was)) changes.push(`\`${name}\` added`);
  for (const name of Object.keys(was)) if (!(name in now)) changes.push(`\`${name}\` removed`);
  for (const name of Object.keys(now)) if (name in was && canonicalJson(was[name]) !== canonicalJson(now[name])) changes.push(`\`${name}\` changed`);
  const [reqBefore, reqAfter] = [required(before), required(after)];
  for (const name of reqAfter) if (!reqBefore.has(name) && name in was) changes.push(`\`${name}\` now required`);
  for (const name of reqBefore) if (!reqAfter.has(name) && name in now) changes.push(`\`${name}\` no longer required`);
  if (changes.length === 0 && canonicalJson(before) !== canonicalJson(after)) changes.push('other keywords');
  return changes;
}

function annotationChanges(before: McpToolAnnotations, after: McpToolAnnotations): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort() as (keyof McpToolAnnotations)[];
  return keys.filter((key) => before[key] !== after[key]).map((key) => `${key} ${String(before[key] ?? 'unset')} → ${String(after[key] ?? 'unset')}`);
}
