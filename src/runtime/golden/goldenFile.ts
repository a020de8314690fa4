import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { KeelError } from '../errors';
import type { RunState } from '../store/checkpointStore';
import type { FlagKind } from '../trace/span';

/**
 * Golden files (`*.golden.yaml`): cases an agent must keep passing, each an input and what its run
 * must show. This module reads them; it never runs anything. Every mistake in a file is a
 * GoldenFileError naming the file, the line and the column, and what is wrong there.
 */

export const GOLDEN_VERSION = 1;
export const CASE_TAGS = ['happy', 'edge', 'adversarial'] as const;
export type CaseTag = (typeof CASE_TAGS)[number];

/** A position in a file, 0-based as editors count: the first line is line 0. */
export interface TextPosition {
  readonly line: number;
  readonly character: number;
}

export interface TextRange {
  readonly start: TextPosition;
  readonly end: TextPosition;
}

/** A regular expression as written: `Confirmation KEEL-\w+`, or `/booked/i` with flags. */
export interface Pattern {
  readonly source: string;
  readonly flags: string;
}

/** A judge pinned to one model, so a verdict means the same thing next month. */
export interface JudgePin {
  /** `openai`: any OpenAI-compatible Chat Completions endpoint. */
  readonly provider: 'openai';
  /** The model id, dated where the provider offers one (`gpt-4o-mini-2024-07-18`). */
  readonly model: string;
  /** The provider's version or release date of that model, recorded with every verdict. */
  readonly version: string;
  /** The endpoint; default `KEEL_JUDGE_BASE_URL`, then `OPENAI_BASE_URL`, then OpenAI. */
  readonly baseURL?: string;
  /** The environment variable holding its API key; default `KEEL_JUDGE_API_KEY`, then `OPENAI_API_KEY`. */
  readonly apiKeyEnv?: string;
  /** The system fingerprint the endpoint reported when the judge was pinned (OpenAI's `system_fingerprint`): a drift check fails on another. */
  readonly fingerprint?: string;
}

export interface JudgeConfig extends JudgePin {
  /** A second judge, from another provider or model, that grades every rubric too. */
  readonly crossGrade?: JudgePin;
}

/** One intent a run can show. The rule holds when every condition given holds. */
export interface IntentRule {
  readonly name: string;
  /** What the intent means, for the judge when it classifies. */
  readonly description: string;
  readonly answerContains: readonly string[];
  readonly answerMatches: readonly Pattern[];
  readonly toolsCalled: readonly string[];
}

/**
 * What a tool call's arguments must look like. A plain object matches a subset of the arguments
 * (the keys it lists, recursively); a scalar or a list must be equal; `$`-operators do the rest.
 */
export type ArgMatcher =
  | { readonly kind: 'equals'; readonly value: unknown }
  | { readonly kind: 'matches'; readonly pattern: Pattern }
  | { readonly kind: 'range'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'oneOf'; readonly values: readonly unknown[] }
  | { readonly kind: 'contains'; readonly value: unknown }
  | { readonly kind: 'subset'; readonly fields: Readonly<Record<string, ArgMatcher>> }
  | { readonly kind: 'list'; readonly items: readonly ArgMatcher[] }
  | { readonly kind: 'all'; readonly matchers: readonly ArgMatcher[] };

export interface ArgsExpectation {
  readonly tool: string;
  readonly args: ArgMatcher;
}

export interface Expectations {
  /** How the run must end; default `completed`. */
  readonly state: RunState;
  readonly answer?: {
    readonly contains: readonly string[];
    readonly matches: readonly Pattern[];
    readonly notContains: readonly string[];
  };
  readonly intent?: { readonly in: readonly string[]; readonly by: 'rules' | 'judge' };
  readonly tools?: {
    readonly called: readonly string[];
    readonly notCalled: readonly string[];
    /** Tools that must be called in this order (other calls may come between). */
    readonly order: readonly string[];
    /** Each: some call of the tool has arguments that match. */
    readonly args: readonly ArgsExpectation[];
  };
  readonly maxSteps?: number;
  readonly maxTokens?: number;
  readonly maxCostUsd?: number;
  /** No detector flags, except of these kinds. */
  readonly noFlags?: { readonly except: readonly FlagKind[] };
  /** `true`: some approval was asked for; `false`: none was; a list: approvals for exactly these tools, in order. */
  readonly approvals?: boolean | readonly string[];
  readonly judge?: { readonly rubric: string; readonly threshold: number };
}

/** How the test answers the approvals a run asks for: approve, reject with a reason, or leave them pending. */
export type ApprovalAnswer =
  | { readonly action: 'approve' }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'leave' };

export interface GoldenCase {
  readonly name: string;
  readonly tags: readonly CaseTag[];
  readonly input: string;
  readonly approvals: ApprovalAnswer;
  readonly expect: Expectations;
  /** The whole case in the file. */
  readonly range: TextRange;
}

export interface GoldenFile {
  /** Absolute path of the golden file. */
  readonly file: string;
  readonly version: typeof GOLDEN_VERSION;
  /** Absolute path of the agent file the cases run. */
  readonly agentFile: string;
  readonly judge: JudgeConfig | undefined;
  readonly intents: readonly IntentRule[];
  readonly cases: readonly GoldenCase[];
}

/** A golden file Keel cannot use as it is: which file, where, and why. */
export class GoldenFileError extends KeelError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly reason: string,
  ) {
    super(`${line === undefined ? file : `${file}:${line}:${column ?? 1}`}: ${reason}`, { context: { file, line, column } });
  }
}

export const FLAG_KINDS: readonly FlagKind[] = [
  'tool_output_schema',
  'empty_answer',
  'refusal',
  'repeated_call',
  'ignored_tool_error',
  'unsupported_entity',
  'missing_required_tool',
  'injection',
  'exfiltration',
];

const RUN_STATES: readonly RunState[] = ['completed', 'failed', 'cancelled', 'budget_exceeded', 'waiting_approval', 'interrupted'];
const JUDGE_PROVIDERS = ['openai'] as const;
const OPERATORS = ['$eq', '$matches', '$min', '$max', '$oneOf', '$contains'] as const;

/**
 * Reads a golden file's text. `file` is its absolute path (the agent path is relative to it);
 * `shownAs` is how errors name it (a path relative to the working folder, say).
 */
export function parseGoldenFile(text: string, file: string, shownAs: string = file): GoldenFile {
  const reader: YamlReader = new YamlReader(text, shownAs);
  const root = reader.document();
  const top = reader.fields(root, 'the file', ['version', 'agent', 'judge', 'intents', 'cases']);
  const versionNode = reader.required(top, root, 'version', 'the file');
  const version = reader.value(versionNode);
  if (version !== GOLDEN_VERSION) {
    reader.fail(
      versionNode,
      typeof version === 'number' && version > GOLDEN_VERSION
        ? `this file is golden format version ${version}, newer than this Keel reads (${GOLDEN_VERSION}): update Keel.`
        : `\`version\` must be ${GOLDEN_VERSION}.`,
    );
  }
  const agent = reader.string(reader.required(top, root, 'agent', 'the file'), '`agent`');
  const judgeNode = top.get('judge');
  const judge = judgeNode === undefined ? undefined : readJudgeConfig(reader, judgeNode, '`judge`', true);
  const intentsNode = top.get('intents');
  const intents = intentsNode === undefined ? [] : readIntents(reader, intentsNode);
  const casesNode = reader.required(top, root, 'cases', 'the file');
  if (!isSeq(casesNode)) reader.fail(casesNode, '`cases` must be a list of cases.');
  if (casesNode.items.length === 0) reader.fail(casesNode, '`cases` is empty: add at least one case.');
  const context: CaseContext = { judge, intents: new Set(intents.map((intent) => intent.name)) };
  const cases: GoldenCase[] = [];
  const names = new Map<string, number>();
  casesNode.items.forEach((item, index) => {
    const parsed = readCase(reader, item as Node, index, context);
    const earlier = names.get(parsed.name);
    if (earlier !== undefined) reader.fail(item as Node, `two cases are named ${JSON.stringify(parsed.name)} (cases ${earlier + 1} and ${index + 1}); names must be unique.`);
    names.set(parsed.name, index);
    cases.push(parsed);
  });
  return { file, version: GOLDEN_VERSION, agentFile: resolve(dirname(file), agent), judge, intents, cases };
}

interface CaseContext {
  readonly judge: JudgeConfig | undefined;
  readonly intents: ReadonlySet<string>;
}

function readCase(reader: YamlReader, node: Node, index: number, context: CaseContext): GoldenCase {
  const where = `case ${index + 1}`;
  const fields = reader.fields(node, where, ['name', 'tags', 'input', 'approvals', 'expect']);
  const name = reader.string(reader.required(fields, node, 'name', where), `${where}: \`name\``);
  const named = `case ${JSON.stringify(name)}`;
  const tagsNode = reader.required(fields, node, 'tags', named);
  const tags = reader.strings(tagsNode, `${named}: \`tags\``).map((tag) => {
    if (!(CASE_TAGS as readonly string[]).includes(tag)) reader.fail(tagsNode, `${named}: tag ${JSON.stringify(tag)} is not one of ${CASE_TAGS.join(', ')}.`);
    return tag as CaseTag;
  });
  if (tags.length === 0) reader.fail(tagsNode, `${named}: give at least one tag (${CASE_TAGS.join(', ')}).`);
  const input = reader.string(reader.required(fields, node, 'input', named), `${named}: \`input\``);
  const approvalsNode = fields.get('approvals');
  const approvals = approvalsNode === undefined ? ({ action: 'approve' } as const) : readApprovalAnswer(reader, approvalsNode, named);
  const expectNode = reader.required(fields, node, 'expect', named);
  return { name, tags, input, approvals, expect: readExpect(reader, expectNode, named, context), range: reader.range(node) };
}

function readApprovalAnswer(reader: YamlReader, node: Node, where: string): ApprovalAnswer {
  if (isScalar(node)) {
    const value = reader.value(node);
    if (value === 'approve') return { action: 'approve' };
    if (value === 'reject') return { action: 'reject', reason: 'Rejected by the golden test.' };
    if (value === 'leave') return { action: 'leave' };
    reader.fail(node, `${where}: \`approvals\` must be approve, reject, leave, or { reject: <reason> }.`);
  }
  const fields = reader.fields(node, `${where}: \`approvals\``, ['reject']);
  return { action: 'reject', reason: reader.string(reader.required(fields, node, 'reject', `${where}: \`approvals\``), `${where}: \`approvals.reject\``) };
}

function readExpect(reader: YamlReader, node: Node, where: string, context: CaseContext): Expectations {
  const keys = ['state', 'answer', 'intent', 'tools', 'maxSteps', 'maxTokens', 'maxCostUsd', 'noFlags', 'approvals', 'judge'];
  const fields = reader.fields(node, `${where}: \`expect\``, keys);
  let state: RunState = 'completed';
  const stateNode = fields.get('state');
  if (stateNode !== undefined) {
    const value = reader.string(stateNode, `${where}: \`expect.state\``);
    if (!(RUN_STATES as readonly string[]).includes(value)) reader.fail(stateNode, `${where}: \`expect.state\` must be one of ${RUN_STATES.join(', ')}.`);
    state = value as RunState;
  }
  const expect: { -readonly [K in keyof Expectations]: Expectations[K] } = { state };
  const answerNode = fields.get('answer');
  if (answerNode !== undefined) {
    const answer = reader.fields(answerNode, `${where}: \`expect.answer\``, ['contains', 'matches', 'notContains']);
    expect.answer = {
      contains: optionalList(reader, answer.get('contains'), `${where}: \`expect.answer.contains\``),
      matches: optionalList(reader, answer.get('matches'), `${where}: \`expect.answer.matches\``).map((text, index) =>
        reader.pattern(listItem(answer.get('matches'), index), text, `${where}: \`expect.answer.matches\``),
      ),
      notContains: optionalList(reader, answer.get('notContains'), `${where}: \`expect.answer.notContains\``),
    };
  }
  const intentNode = fields.get('intent');
  if (intentNode !== undefined) expect.intent = readIntentExpectation(reader, intentNode, where, context);
  const toolsNode = fields.get('tools');
  if (toolsNode !== undefined) expect.tools = readTools(reader, toolsNode, where);
  for (const key of ['maxSteps', 'maxTokens'] as const) {
    const limit = fields.get(key);
    if (limit !== undefined) expect[key] = reader.wholeNumber(limit, `${where}: \`expect.${key}\``);
  }
  const cost = fields.get('maxCostUsd');
  if (cost !== undefined) expect.maxCostUsd = reader.number(cost, `${where}: \`expect.maxCostUsd\``, 0);
  const flagsNode = fields.get('noFlags');
  if (flagsNode !== undefined) expect.noFlags = readNoFlags(reader, flagsNode, where);
  const approvalsNode = fields.get('approvals');
  if (approvalsNode !== undefined) {
    const value = reader.value(approvalsNode);
    expect.approvals = typeof value === 'boolean' ? value : reader.strings(approvalsNode, `${where}: \`expect.approvals\` (true, false or a list of tools)`);
  }
  const judgeNode = fields.get('judge');
  if (judgeNode !== undefined) {
    if (!context.judge) reader.fail(judgeNode, `${where}: a judge rubric needs the file's \`judge:\` (provider, model and version to pin).`);
    const judge = reader.fields(judgeNode, `${where}: \`expect.judge\``, ['rubric', 'threshold']);
    const rubric = reader.string(reader.required(judge, judgeNode, 'rubric', `${where}: \`expect.judge\``), `${where}: \`expect.judge.rubric\``);
    const thresholdNode = judge.get('threshold');
    const threshold = thresholdNode === undefined ? 0.7 : reader.number(thresholdNode, `${where}: \`expect.judge.threshold\``, 0, 1);
    expect.judge = { rubric, threshold };
  }
  return expect;
}

function readIntentExpectation(reader: YamlReader, node: Node, where: string, context: CaseContext): { in: string[]; by: 'rules' | 'judge' } {
  const what = `${where}: \`expect.intent\``;
  let names: string[];
  let by: 'rules' | 'judge' = 'rules';
  let namesNode: Node = node;
  if (isSeq(node) || isScalar(node)) {
    names = isSeq(node) ? reader.strings(node, what) : [reader.string(node, what)];
  } else {
    const fields = reader.fields(node, what, ['in', 'by']);
    namesNode = reader.required(fields, node, 'in', what);
    names = reader.strings(namesNode, `${what}.in`);
    const byNode = fields.get('by');
    if (byNode !== undefined) {
      const value = reader.string(byNode, `${what}.by`);
      if (value !== 'rules' && value !== 'judge') reader.fail(byNode, `${what}.by must be rules or judge.`);
      if (value === 'judge' && !context.judge) reader.fail(byNode, `${where}: classifying the intent by judge needs the file's \`judge:\`.`);
      by = value;
    }
  }
  for (const name of names) {
    if (!context.intents.has(name)) {
      reader.fail(namesNode, `${what} names ${JSON.stringify(name)}, which the file's \`intents:\` does not declare${context.intents.size > 0 ? ` (it declares ${[...context.intents].join(', ')})` : ''}.`);
    }
  }
  if (names.length === 0) reader.fail(namesNode, `${what} must name at least one intent.`);
  return { in: names, by };
}

function readTools(reader: YamlReader, node: Node, where: string): NonNullable<Expectations['tools']> {
  const what = `${where}: \`expect.tools\``;
  const fields = reader.fields(node, what, ['called', 'notCalled', 'order', 'args']);
  const argsNode = fields.get('args');
  let args: ArgsExpectation[] = [];
  if (argsNode !== undefined) {
    if (!isSeq(argsNode)) reader.fail(argsNode, `${what}.args must be a list of { tool, args }.`);
    args = argsNode.items.map((item, index) => {
      const entry = reader.fields(item as Node, `${what}.args[${index + 1}]`, ['tool', 'args']);
      return {
        tool: reader.string(reader.required(entry, item as Node, 'tool', `${what}.args[${index + 1}]`), `${what}.args[${index + 1}].tool`),
        args: readMatcher(reader, reader.required(entry, item as Node, 'args', `${what}.args[${index + 1}]`), `${what}.args[${index + 1}].args`),
      };
    });
  }
  return {
    called: optionalList(reader, fields.get('called'), `${what}.called`),
    notCalled: optionalList(reader, fields.get('notCalled'), `${what}.notCalled`),
    order: optionalList(reader, fields.get('order'), `${what}.order`),
    args,
  };
}

function readMatcher(reader: YamlReader, node: Node, what: string): ArgMatcher {
  if (isSeq(node)) return { kind: 'list', items: node.items.map((item, index) => readMatcher(reader, item as Node, `${what}[${index}]`)) };
  if (!isMap(node)) return { kind: 'equals', value: reader.value(node) };
  const pairs = reader.pairs(node, what);
  const operators = pairs.filter(([key]) => key.startsWith('$'));
  if (operators.length === 0) {
    return { kind: 'subset', fields: Object.fromEntries(pairs.map(([key, value]) => [key, readMatcher(reader, value, `${what}.${key}`)])) };
  }
  if (operators.length !== pairs.length) reader.fail(node, `${what} mixes $-operators with argument names; nest the argument under its own name.`);
  const matchers: ArgMatcher[] = [];
  let min: number | undefined;
  let max: number | undefined;
  for (const [key, value] of operators) {
    switch (key as (typeof OPERATORS)[number]) {
      case '$eq':
        matchers.push({ kind: 'equals', value: toPlain(value) });
        break;
      case '$matches':
        matchers.push({ kind: 'matches', pattern: reader.pattern(value, reader.string(value, `${what}.$matches`), `${what}.$matches`) });
        break;
      case '$min':
        min = reader.number(value, `${what}.$min`);
        break;
      case '$max':
        max = reader.number(value, `${what}.$max`);
        break;
      case '$oneOf':
        if (!isSeq(value)) reader.fail(value, `${what}.$oneOf must be a list of values.`);
        matchers.push({ kind: 'oneOf', values: value.items.map((item) => toPlain(item as Node)) });
        break;
      case '$contains':
        matchers.push({ kind: 'contains', value: toPlain(value) });
        break;
      default:
        reader.fail(node, `${what}: ${key} is not an operator Keel knows (${OPERATORS.join(', ')}).`);
    }
  }
  if (min !== undefined || max !== undefined) {
    if (min !== undefined && max !== undefined && min > max) reader.fail(node, `${what}: $min (${min}) is above $max (${max}).`);
    matchers.push({ kind: 'range', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) });
  }
  return matchers.length === 1 ? (matchers[0] as ArgMatcher) : { kind: 'all', matchers };
}

function readNoFlags(reader: YamlReader, node: Node, where: string): { except: FlagKind[] } {
  const what = `${where}: \`expect.noFlags\``;
  if (isScalar(node)) {
    if (reader.value(node) !== true) reader.fail(node, `${what} must be true or { except: [flag kinds] }.`);
    return { except: [] };
  }
  const fields = reader.fields(node, what, ['except']);
  const exceptNode = reader.required(fields, node, 'except', what);
  const except = reader.strings(exceptNode, `${what}.except`);
  for (const kind of except) {
    if (!(FLAG_KINDS as readonly string[]).includes(kind)) reader.fail(exceptNode, `${what}.except: ${JSON.stringify(kind)} is not a flag kind (${FLAG_KINDS.join(', ')}).`);
  }
  return { except: except as FlagKind[] };
}

/** Reads a judge's pin (and, at the top of a file, its cross-grader). */
export function readJudgeConfig(reader: YamlReader, node: Node, what: string, top: boolean): JudgeConfig {
  const pinFields = ['provider', 'model', 'version', 'baseURL', 'apiKeyEnv', 'fingerprint'];
  const fields = reader.fields(node, what, top ? [...pinFields, 'crossGrade'] : pinFields);
  const providerNode = reader.required(fields, node, 'provider', what);
  const provider = reader.string(providerNode, `${what}.provider`);
  if (!(JUDGE_PROVIDERS as readonly string[]).includes(provider)) {
    reader.fail(providerNode, `${what}.provider must be ${JUDGE_PROVIDERS.join(' or ')} (any OpenAI-compatible endpoint; set baseURL for another one).`);
  }
  const modelNode = reader.required(fields, node, 'model', what);
  const model = reader.string(modelNode, `${what}.model`);
  const versionNode = reader.required(fields, node, 'version', what);
  const version = String(reader.value(versionNode) ?? '');
  if (version.trim() === '') reader.fail(versionNode, `${what}.version must name the model's version or release date, such as "2024-07-18".`);
  const baseURLNode = fields.get('baseURL');
  const apiKeyEnvNode = fields.get('apiKeyEnv');
  const fingerprintNode = fields.get('fingerprint');
  const crossNode = fields.get('crossGrade');
  return {
    provider: 'openai',
    model,
    version,
    ...(baseURLNode === undefined ? {} : { baseURL: reader.string(baseURLNode, `${what}.baseURL`) }),
    ...(apiKeyEnvNode === undefined ? {} : { apiKeyEnv: reader.string(apiKeyEnvNode, `${what}.apiKeyEnv`) }),
    ...(fingerprintNode === undefined ? {} : { fingerprint: reader.string(fingerprintNode, `${what}.fingerprint`) }),
    ...(crossNode === undefined ? {} : { crossGrade: readJudgeConfig(reader, crossNode, `${what}.crossGrade`, false) }),
  };
}

function readIntents(reader: YamlReader, node: Node): IntentRule[] {
  if (!isMap(node)) reader.fail(node, '`intents` must map intent names to rules, such as `booked: { toolsCalled: [book_flight] }`.');
  return reader.pairs(node, '`intents`').map(([name, value]) => {
    const what = `intent ${JSON.stringify(name)}`;
    const fields = reader.fields(value, what, ['description', 'answerContains', 'answerMatches', 'toolsCalled']);
    const descriptionNode = fields.get('description');
    const matchesNode = fields.get('answerMatches');
    const rule: IntentRule = {
      name,
      description: descriptionNode === undefined ? name : reader.string(descriptionNode, `${what}.description`),
      answerContains: optionalList(reader, fields.get('answerContains'), `${what}.answerContains`),
      answerMatches: optionalList(reader, matchesNode, `${what}.answerMatches`).map((text, index) => reader.pattern(listItem(matchesNode, index), text, `${what}.answerMatches`)),
      toolsCalled: optionalList(reader, fields.get('toolsCalled'), `${what}.toolsCalled`),
    };
    return rule;
  });
}

/** A string or a list of strings, as a list; none when absent. */
function optionalList(reader: YamlReader, node: Node | undefined, what: string): string[] {
  if (node === undefined) return [];
  return isSeq(node) ? reader.strings(node, what) : [reader.string(node, what)];
}

function listItem(node: Node | undefined, index: number): Node | undefined {
  return node !== undefined && isSeq(node) ? (node.items[index] as Node) : node;
}

function toPlain(node: Node): unknown {
  return node.toJSON() as unknown;
}

/** Turns `/text/flags` into a pattern; any other text is the pattern's source with no flags. */
export function toPattern(text: string): Pattern {
  const slashed = /^\/(.*)\/([dgimsuvy]*)$/s.exec(text);
  return slashed ? { source: slashed[1] ?? '', flags: slashed[2] ?? '' } : { source: text, flags: '' };
}

export function toRegExp(pattern: Pattern): RegExp {
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
}

export function describePattern(pattern: Pattern): string {
  return `/${pattern.source}/${pattern.flags}`;
}

/** Reads YAML nodes, failing with the file, line and column of the node at fault. */
export class YamlReader {
  private readonly lines = new LineCounter();
  private readonly text: string;

  constructor(
    text: string,
    private readonly file: string,
  ) {
    this.text = text;
  }

  document(): Node {
    const doc = parseDocument(this.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    const [error] = doc.errors;
    if (error) {
      const at = this.lines.linePos(error.pos[0]);
      throw new GoldenFileError(this.file, at.line, at.col, `not valid YAML: ${firstLine(error.message)}`);
    }
    const root = doc.contents;
    if (!root || !isMap(root)) throw new GoldenFileError(this.file, 1, 1, 'the file must be a YAML mapping (key: value lines), starting with `version: 1`.');
    return root;
  }

  fail(node: Node | null | undefined, reason: string): never {
    const offset = node?.range?.[0];
    if (offset === undefined) throw new GoldenFileError(this.file, undefined, undefined, reason);
    const at = this.lines.linePos(offset);
    throw new GoldenFileError(this.file, at.line, at.col, reason);
  }

  range(node: Node): TextRange {
    const [startOffset, endOffset] = node.range ?? [0, 0];
    const start = this.lines.linePos(startOffset);
    // The range of a block ends where the next one starts: step back over the line breaks.
    let end = endOffset;
    while (end > startOffset && /\s/.test(this.text[end - 1] ?? '')) end -= 1;
    const stop = this.lines.linePos(end);
    return { start: { line: start.line - 1, character: start.col - 1 }, end: { line: stop.line - 1, character: stop.col - 1 } };
  }

  pairs(node: Node, what: string): [string, Node][] {
    if (!isMap(node)) this.fail(node, `${what} must be a mapping.`);
    return (node as YAMLMap).items.map((pair: Pair) => {
      const key = pair.key;
      if (!isScalar(key) || typeof key.value !== 'string') this.fail(key as Node, `${what}: every key must be a plain name.`);
      const value = pair.value as Node | null;
      if (value === null) this.fail(key, `${what}.${key.value} has no value.`);
      return [key.value, value];
    });
  }

  /** A mapping's fields by name, refusing names not in `allowed`. */
  fields(node: Node, what: string, allowed: readonly string[]): Map<string, Node> {
    if (!isMap(node)) this.fail(node, `${what} must be a mapping (key: value lines).`);
    const fields = new Map<string, Node>();
    for (const pair of (node as YAMLMap).items) {
      const key = pair.key as Node;
      if (!isScalar(key) || typeof key.value !== 'string') this.fail(key, `${what}: every key must be a plain name.`);
      const name = key.value;
      if (!allowed.includes(name)) this.fail(key, `${what} has no field \`${name}\`; it takes ${allowed.map((field) => `\`${field}\``).join(', ')}.`);
      const value = pair.value as Node | null;
      if (value === null || (isScalar(value) && value.value === null)) this.fail(key, `${what}: \`${name}\` has no value.`);
      fields.set(name, value);
    }
    return fields;
  }

  required(fields: Map<string, Node>, owner: Node, name: string, what: string): Node {
    const node = fields.get(name);
    if (node === undefined) this.fail(owner, `${what} needs \`${name}\`.`);
    return node;
  }

  value(node: Node): unknown {
    return isScalar(node) ? node.value : node.toJSON();
  }

  string(node: Node, what: string): string {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'string' || value.trim() === '') this.fail(node, `${what} must be a non-empty string.`);
    return value;
  }

  strings(node: Node, what: string): string[] {
    if (!isSeq(node)) this.fail(node, `${what} must be a list.`);
    return node.items.map((item) => this.string(item as Node, `every entry of ${what}`));
  }

  number(node: Node, what: string, min?: number, max?: number): number {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(node, `${what} must be a number.`);
    if (min !== undefined && value < min) this.fail(node, `${what} must be at least ${min}.`);
    if (max !== undefined && value > max) this.fail(node, `${what} must be at most ${max}.`);
    return value;
  }

  wholeNumber(node: Node, what: string): number {
    const value = this.number(node, what, 0);
    if (!Number.isInteger(value)) this.fail(node, `${what} must be a whole number.`);
    return value;
  }

  pattern(node: Node | undefined, text: string, what: string): Pattern {
    const pattern = toPattern(text);
    try {
      toRegExp(pattern);
    } catch (error) {
      this.fail(node, `${what}: ${JSON.stringify(text)} is not a valid regular expression (${error instanceof Error ? error.message : String(error)}).`);
    }
    return pattern;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? text;
}
