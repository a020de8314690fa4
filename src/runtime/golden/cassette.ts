import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { NonRetryableError } from '../effects/retry';
import { KeelError } from '../errors';
import { truncate } from '../format';
import type { Message, Model, ModelCallOptions, ModelRequest, ModelResponse, ToolSpec } from '../model/model';
import type { RecordedMcp } from '../mcp/offlineConnections';
import type { Verdict } from './judge';

/**
 * Cassettes: what a model answered to each request of a golden case, recorded once against a real
 * model (`keel record`) and replayed offline ever after. A request is found by the hash of what
 * the model is sent (the conversation and the tools offered), so a replay is deterministic; a
 * request the cassette has no answer for is a CassetteMismatchError that says what changed.
 *
 * One cassette per golden file: `__cassettes__/<name>.cassette.json` beside it.
 */

export const CASSETTE_VERSION = 1;

export interface RecordedRequest {
  readonly messages: readonly Message[];
  readonly tools: readonly ToolSpec[];
}

export interface Interaction {
  /** SHA-256 of the canonical JSON of `request`. */
  readonly hash: string;
  /** `provider:name` of the model that answered. */
  readonly model: string;
  readonly request: RecordedRequest;
  readonly response: ModelResponse;
}

export interface CassetteCase {
  readonly recordedAt: string;
  /** The run's model, `provider:name`: replays run as this model (its prices, its label). */
  readonly model: string;
  readonly interactions: readonly Interaction[];
  /** The judge's calls, replayed like the agent's. */
  readonly judge: readonly Interaction[];
  /** Every verdict the judge gave while recording, with the judge's pin. */
  readonly verdicts: readonly Verdict[];
  /** What the agent's MCP servers offered and answered, replayed offline like the model. */
  readonly mcp?: RecordedMcp;
}

export interface Cassette {
  readonly version: typeof CASSETTE_VERSION;
  /** The golden file's name, beside the `__cassettes__` folder. */
  readonly golden: string;
  readonly cases: Readonly<Record<string, CassetteCase>>;
}

/** A cassette file Keel cannot read. */
export class CassetteError extends KeelError {}

/** Where a golden file's cassette lives: `__cassettes__/travel.golden.cassette.json` beside `travel.golden.yaml`. */
export function cassettePathFor(goldenFile: string): string {
  return join(dirname(goldenFile), '__cassettes__', `${basename(goldenFile).replace(/\.ya?ml$/i, '')}.cassette.json`);
}

export function requestHash(request: RecordedRequest): string {
  const normal = normalizeRequest(request);
  return sha256(canonicalJson({ messages: normal.messages, tools: normal.tools }));
}

/**
 * A request without the values Keel itself makes afresh for every run, so that the same
 * conversation matches in every run: the ids of the fences around tool output (derived from the
 * run's random trace id) become zeros.
 */
export function normalizeRequest(request: RecordedRequest): RecordedRequest {
  return { messages: request.messages.map(normalizeMessage), tools: request.tools };
}

const FENCE_ID = /<<keel:[a-z_]+ id=([0-9a-f]{6,64})\b/g;

function normalizeMessage(message: Message): Message {
  if (message.role !== 'tool' && message.role !== 'user') return message;
  const ids = new Set([...message.content.matchAll(FENCE_ID)].map((match) => match[1] ?? ''));
  if (ids.size === 0) return message;
  let content = message.content;
  for (const id of ids) if (id !== '') content = content.replaceAll(id, '0'.repeat(id.length));
  return { ...message, content };
}

/** Reads a cassette; undefined when there is none yet. */
export function readCassette(path: string): Cassette | undefined {
  if (!existsSync(path)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CassetteError(`${path} is not a cassette Keel can read (${error instanceof Error ? error.message : String(error)}); record it again with keel record.`);
  }
  const cassette = value as Partial<Cassette>;
  if (typeof cassette.version !== 'number' || typeof cassette.cases !== 'object' || cassette.cases === null) {
    throw new CassetteError(`${path} is not a Keel cassette (no version or cases); record it again with keel record.`);
  }
  if (cassette.version > CASSETTE_VERSION) {
    throw new CassetteError(`${path} was written by a newer Keel (cassette version ${cassette.version}; this one reads ${CASSETTE_VERSION}): update Keel.`);
  }
  return value as Cassette;
}

/** Writes a cassette with its cases in name order, so re-recording one case changes only its lines. */
export function writeCassette(path: string, cassette: Cassette): void {
  mkdirSync(dirname(path), { recursive: true });
  const cases = Object.fromEntries(Object.entries(cassette.cases).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ ...cassette, cases }, null, 2)}\n`);
  renameSync(temporary, path);
}

/** What to do about a mismatch: the command that records the case again. */
export interface RerecordHint {
  readonly goldenFile: string;
  readonly caseName: string;
}

export function rerecordCommand(hint: RerecordHint): string {
  return `keel record ${quoteArg(hint.goldenFile)} --case ${quoteArg(hint.caseName)}`;
}

/** The agent (or the judge) sent a request the cassette holds no answer for. Never retried. */
export class CassetteMismatchError extends NonRetryableError {
  constructor(
    readonly diff: string,
    readonly hint: RerecordHint,
  ) {
    super(`Cassette mismatch in case ${JSON.stringify(hint.caseName)}: ${diff}\nRe-record it: ${rerecordCommand(hint)}`);
  }
}

/**
 * Plays back one case's interactions. `model(label)` gives a Model with that label whose answers
 * come from the tape, so a replayed run costs and reads as the recorded one did. Remembers the
 * first mismatch, so the case can report it as such whatever the run made of the error.
 */
export class CassettePlayer {
  private calls = 0;
  mismatch: CassetteMismatchError | undefined;
  private readonly byHash = new Map<string, Interaction>();

  constructor(
    private readonly interactions: readonly Interaction[],
    private readonly hint: RerecordHint,
    private readonly what: string = 'model',
  ) {
    for (const interaction of interactions) if (!this.byHash.has(interaction.hash)) this.byHash.set(interaction.hash, interaction);
  }

  model(label: string): Model {
    const colon = label.indexOf(':');
    const provider = colon < 0 ? label : label.slice(0, colon);
    const name = colon < 0 ? '' : label.slice(colon + 1);
    return {
      provider,
      name,
      generate: (request: ModelRequest, options: ModelCallOptions = {}) => this.play(request, options),
    };
  }

  // async, so a mismatch rejects the promise as a failed model call does.
  private async play(request: ModelRequest, options: ModelCallOptions): Promise<ModelResponse> {
    options.signal?.throwIfAborted();
    const index = this.calls++;
    const recorded = normalizeRequest({ messages: request.messages, tools: request.tools });
    const found = this.byHash.get(requestHash(recorded));
    if (!found) {
      const nearest = this.interactions[Math.min(index, this.interactions.length - 1)];
      this.mismatch ??= new CassetteMismatchError(describeMismatch(nearest?.request, recorded, index, this.interactions.length, this.what), this.hint);
      throw this.mismatch;
    }
    if (found.response.message.content) options.onTextDelta?.(found.response.message.content);
    return found.response;
  }
}

/** Records what a model is asked and answers, passing every call through. */
export class Recorder {
  readonly interactions: Interaction[] = [];

  wrap(model: Model): Model {
    const label = `${model.provider}:${model.name}`;
    return {
      provider: model.provider,
      name: model.name,
      generate: async (request: ModelRequest, options?: ModelCallOptions) => {
        const response = await model.generate(request, options);
        const recorded = structuredClone(normalizeRequest({ messages: request.messages, tools: request.tools }));
        this.interactions.push({ hash: requestHash(recorded), model: label, request: recorded, response: structuredClone(response) });
        return response;
      },
    };
  }
}

/**
 * What changed between the request recorded at this point and the one sent now: the
 * instructions, the tools offered, or a message of the conversation; in a few readable lines.
 */
export function describeMismatch(recorded: RecordedRequest | undefined, actual: RecordedRequest, index: number, recordedCalls: number, what = 'model'): string {
  const call = `${what} call ${index + 1}`;
  if (!recorded) return `the cassette holds no ${what} calls for this case, but the run made ${call}.`;
  if (index >= recordedCalls) return `the run made ${call}, but only ${recordedCalls} ${recordedCalls === 1 ? 'was' : 'were'} recorded.\n${describeRequestChange(recorded, actual)}`;
  return `${call} differs from the recorded one.\n${describeRequestChange(recorded, actual)}`;
}

function describeRequestChange(recorded: RecordedRequest, actual: RecordedRequest): string {
  const lines: string[] = [];
  const instructions = (request: RecordedRequest) => request.messages.find((message) => message.role === 'system')?.content ?? '';
  if (instructions(recorded) !== instructions(actual)) {
    lines.push('  instructions changed:', ...changedText(instructions(recorded), instructions(actual)));
  }
  const toolChanges = describeToolChanges(recorded.tools, actual.tools);
  if (toolChanges.length > 0) lines.push(`  tools changed: ${toolChanges.join('; ')}`);
  const before = recorded.messages.filter((message) => message.role !== 'system');
  const after = actual.messages.filter((message) => message.role !== 'system');
  const firstDifferent = Array.from({ length: Math.max(before.length, after.length) }, (_, index) => index).find(
    (index) => canonicalJson(before[index]) !== canonicalJson(after[index]),
  );
  if (firstDifferent !== undefined) {
    const was = before[firstDifferent];
    const now = after[firstDifferent];
    const label = describeMessage(now ?? was);
    if (was === undefined) lines.push(`  message ${firstDifferent + 1} (${label}) is new:`, `    + now:      ${truncate(messageText(now), 300)}`);
    else if (now === undefined) lines.push(`  message ${firstDifferent + 1} (${label}) is gone:`, `    - recorded: ${truncate(messageText(was), 300)}`);
    else lines.push(`  message ${firstDifferent + 1} (${label}) changed:`, ...changedText(messageText(was), messageText(now)));
  }
  if (lines.length === 0) lines.push('  the requests differ in a way that does not show in their text (a setting sent with them).');
  return lines.join('\n');
}

function describeToolChanges(before: readonly ToolSpec[], after: readonly ToolSpec[]): string[] {
  const old = new Map(before.map((tool) => [tool.name, tool]));
  const now = new Map(after.map((tool) => [tool.name, tool]));
  const changes: string[] = [];
  for (const [name, tool] of now) {
    const was = old.get(name);
    if (!was) changes.push(`${name} was added`);
    else if (was.description !== tool.description) changes.push(`${name}'s description changed`);
    else if (canonicalJson(was.parameters) !== canonicalJson(tool.parameters)) changes.push(`${name}'s arguments changed`);
  }
  for (const name of old.keys()) if (!now.has(name)) changes.push(`${name} was removed`);
  if (changes.length === 0 && before.map((tool) => tool.name).join() !== after.map((tool) => tool.name).join()) changes.push('their order changed');
  return changes;
}

function describeMessage(message: Message | undefined): string {
  if (!message) return 'none';
  switch (message.role) {
    case 'tool':
      return `result of ${message.name}`;
    case 'assistant':
      return message.toolCalls.length > 0 ? `model asked for ${message.toolCalls.map((call) => call.name).join(', ')}` : 'model answer';
    default:
      return message.role === 'user' ? 'the input' : message.role;
  }
}

function messageText(message: Message | undefined): string {
  if (!message) return '';
  if (message.role === 'assistant') {
    const calls = message.toolCalls.map((call) => `${call.name}(${call.arguments})`).join(', ');
    return [message.content ?? '', calls].filter((part) => part !== '').join(' ');
  }
  return message.content;
}

/** The two texts, trimmed to where they differ (with some context), as `- recorded` / `+ now` lines. */
function changedText(before: string, after: string): string[] {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start += 1;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore -= 1;
    endAfter -= 1;
  }
  const from = Math.max(0, start - 40);
  const clip = (text: string, end: number) => `${from > 0 ? '…' : ''}${truncate(text.slice(from, Math.min(text.length, end + 40)), 300)}${end + 40 < text.length ? '…' : ''}`;
  return [`    - recorded: ${clip(before, endBefore)}`, `    + now:      ${clip(after, endAfter)}`];
}

function quoteArg(text: string): string {
  return /^[\w./@:+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
