import { canonicalJson } from '../hash/canonicalJson';
import type { Flag, FlagKind } from './span';
import { readJournal, record, type JournalView, type ToolCallStep, type TraceSource } from './journalView';

/**
 * Semantic failure detectors: quiet failures in a run that ended without an error. Each one is a
 * small rule a person can check by reading the run, and says in its message what it saw.
 */

export interface DetectorOptions {
  /** Tools a run must have used successfully before it ends (the agent's `requiredTools`). */
  readonly requiredTools?: readonly string[];
  /** Phrases that make a final answer a refusal; replaces the built-in list. */
  readonly refusalPhrases?: readonly string[];
  /** More text the agent legitimately knows, such as its instructions, for the unsupported-entity check. */
  readonly evidence?: readonly string[];
  /** Whether messages may quote the run's content (the answer, the entities); off when content is not captured. */
  readonly quoteContent?: boolean;
  /** Applied to the text detectors read, so a secret is never taken for an entity, nor a piece of one quoted. */
  readonly redact?: (text: string) => string;
}

/** A flag before it is attached to a span: `seq` is the step it concerns, null for the run itself. */
export interface DetectedFlag {
  readonly kind: FlagKind;
  readonly severity: Flag['severity'];
  readonly message: string;
  readonly seq: number | null;
}

export const DEFAULT_REFUSAL_PHRASES: readonly string[] = [
  "i'm sorry, but i can't",
  "i'm sorry, but i cannot",
  'i am sorry, but i cannot',
  "i can't help with",
  'i cannot help with',
  "i can't assist",
  'i cannot assist',
  "i'm unable to",
  'i am unable to',
  "i'm not able to",
  'i am not able to',
  "i won't be able to",
  "i can't do that",
  'i cannot do that',
  'i must decline',
  'i have to decline',
  "i can't comply",
  'i cannot comply',
  "i'm not allowed to",
  'i am not allowed to',
  "i'm afraid i can't",
  'as an ai language model',
];

/** Words with which a model owns up to a failure. */
const ACKNOWLEDGES = /\b(?:error|errors|fail|failed|fails|failure|unable|couldn't|could not|can't|cannot|not able|not possible|unavailable|not available|problem|issue|sorry|unfortunately|invalid|denied|declined|refused|rejected|blocked|timed out|retry|try again|went wrong)\b/i;
/** Words with which an answer claims the job is done. */
const CLAIMS_SUCCESS = /\b(?:done|success|successful|successfully|succeeded|complete|completed|booked|confirmed|created|sent|scheduled|paid|charged|processed|updated|saved|finished|all set)\b/i;

const SCHEMA_FAILURE = 'returned output that does not match its schema';

export function detectFlags(source: TraceSource, options: DetectorOptions = {}): DetectedFlag[] {
  const view = readJournal(source);
  return [
    ...toolOutputSchema(view),
    ...repeatedCalls(view),
    ...ignoredToolErrors(view),
    ...answerFlags(source, view, options),
    ...missingRequiredTools(source, view, options),
  ];
}

/** A tool returned output that breaks its own `output` schema. */
export function toolOutputSchema(view: JournalView): DetectedFlag[] {
  return view.calls
    .filter((call) => call.ok === false && (call.step.error ?? '').includes(SCHEMA_FAILURE))
    .map((call) => ({
      kind: 'tool_output_schema',
      severity: 'error',
      message: `${call.name} returned output that does not match its output schema; the model was given an error instead.`,
      seq: call.step.seq,
    }));
}

/** The same tool called again with the same arguments (a `confidence` the model adds is ignored). */
export function repeatedCalls(view: JournalView): DetectedFlag[] {
  const seen = new Map<string, ToolCallStep>();
  const flags: DetectedFlag[] = [];
  for (const call of view.calls) {
    const key = `${call.name}\u0000${canonicalArguments(call.arguments)}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, call);
      continue;
    }
    const earlier = first.ok === false ? 'which failed' : 'which had already returned';
    flags.push({
      kind: 'repeated_call',
      severity: 'warning',
      message: `${call.name} was called again with the same arguments as at step ${first.step.seq} (${earlier}).`,
      seq: call.step.seq,
    });
  }
  return flags;
}

/**
 * A tool call failed, the model's next turn neither mentions a failure nor tries the tool again,
 * and the final answer claims success without a word about it.
 */
export function ignoredToolErrors(view: JournalView): DetectedFlag[] {
  const answer = view.finalTurn?.response?.message.content ?? null;
  if (answer === null || !CLAIMS_SUCCESS.test(answer) || ACKNOWLEDGES.test(answer)) return [];
  const flags: DetectedFlag[] = [];
  for (const call of view.calls) {
    if (call.ok !== false) continue;
    const next = view.turns.find((turn) => turn.step.seq > call.step.seq && turn.response !== null);
    const response = next?.response;
    if (!response) continue;
    const retried = response.message.toolCalls.some((again) => again.name === call.name);
    if (retried || ACKNOWLEDGES.test(response.message.content ?? '')) continue;
    flags.push({
      kind: 'ignored_tool_error',
      severity: 'error',
      message: `${call.name} failed at step ${call.step.seq}, but the model's next turn (step ${next.step.seq}) did not mention it or try again, and the final answer claims success.`,
      seq: call.step.seq,
    });
  }
  return flags;
}

/** Flags about the final answer: empty, a refusal, or naming things nothing in the run supports. */
function answerFlags(source: TraceSource, view: JournalView, options: DetectorOptions): DetectedFlag[] {
  const final = view.finalTurn;
  if (!final?.response) return [];
  const seq = final.step.seq;
  const redact = options.redact ?? ((text: string) => text);
  const answer = redact(final.response.message.content ?? '');
  if (answer.trim() === '') {
    return [{ kind: 'empty_answer', severity: 'error', message: 'The run completed with an empty final answer.', seq }];
  }
  const flags: DetectedFlag[] = [];
  const refusal = refusalIn(answer, options.refusalPhrases ?? DEFAULT_REFUSAL_PHRASES);
  if (refusal !== null || final.response.finishReason === 'content_filter') {
    const why = refusal === null ? 'the provider filtered it' : options.quoteContent ? `it says "${refusal}"` : 'it contains a refusal phrase';
    flags.push({ kind: 'refusal', severity: 'warning', message: `The final answer reads as a refusal: ${why}.`, seq });
  }
  const unsupported = unsupportedEntities(answer, redact(evidenceOf(source, view, options.evidence ?? [])));
  if (unsupported.length > 0) {
    const listed = options.quoteContent
      ? `: ${unsupported
          .slice(0, 5)
          .map((entity) => JSON.stringify(entity.text))
          .join(', ')}${unsupported.length > 5 ? ` and ${unsupported.length - 5} more` : ''}`
      : ` (${describeKinds(unsupported)})`;
    flags.push({
      kind: 'unsupported_entity',
      severity: 'warning',
      message: `The final answer names ${unsupported.length === 1 ? 'something' : `${unsupported.length} things`} that appear in no input or tool output, a likely hallucination${listed}.`,
      seq,
    });
  }
  return flags;
}

/** Required tools a run ended (completed or failed) without one successful call of. */
export function missingRequiredTools(source: TraceSource, view: JournalView, options: DetectorOptions): DetectedFlag[] {
  const required = options.requiredTools ?? [];
  if (required.length === 0 || (source.run.state !== 'completed' && source.run.state !== 'failed')) return [];
  const flags: DetectedFlag[] = [];
  for (const tool of required) {
    const calls = view.calls.filter((call) => call.name === tool);
    if (calls.some((call) => call.ok === true)) continue;
    flags.push({
      kind: 'missing_required_tool',
      severity: 'error',
      message:
        calls.length === 0
          ? `The run ended ${source.run.state} without calling ${tool}, which the agent requires.`
          : `The run ended ${source.run.state} without a successful call of ${tool}, which the agent requires (${calls.length} call${calls.length === 1 ? '' : 's'} failed).`,
      seq: null,
    });
  }
  return flags;
}

/** The first refusal phrase in `answer`, as written there; null if none. */
export function refusalIn(answer: string, phrases: readonly string[]): string | null {
  const normal = normalizeQuotes(answer).toLowerCase();
  for (const phrase of phrases) {
    const at = normal.indexOf(normalizeQuotes(phrase).toLowerCase());
    if (at >= 0) return answer.slice(at, at + phrase.length);
  }
  return null;
}

function normalizeQuotes(text: string): string {
  return text.replace(/[\u2018\u2019\u02bc]/g, "'");
}

function canonicalArguments(raw: string): string {
  try {
    const parsed = JSON.parse(raw) as unknown;
    const { confidence: _confidence, ...rest } = record(parsed);
    return canonicalJson(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? rest : parsed);
  } catch {
    return raw.trim();
  }
}

/** Everything a final answer may legitimately draw on: the input, every tool output, and extra evidence. */
function evidenceOf(source: TraceSource, view: JournalView, extra: readonly string[]): string {
  // What the run read from memory (and its thread) is evidence too.
  const recalled = (source.memoryOps ?? []).map((op) => JSON.stringify(op.result) ?? '');
  return [source.run.input, ...view.calls.map((call) => call.content ?? ''), ...recalled, ...extra].join('\n');
}

export type EntityKind = 'url' | 'email' | 'money' | 'code' | 'number' | 'name';

export interface Entity {
  readonly kind: EntityKind;
  readonly text: string;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`)\]]+/g;
const EMAIL_PATTERN = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g;
const MONEY_PATTERN = /(?:[$€£¥]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP|JPY|CHF|dollars?|euros?)\b)/gi;
const CODE_PATTERN = /\b(?=[A-Z0-9-]*[A-Z])(?=[A-Z0-9-]*\d)[A-Z0-9]+(?:-[A-Z0-9]+)*\b/g;
const NUMBER_PATTERN = /\d[\d,]*(?:\.\d+)?/g;
const WORD_PATTERN = /[A-Za-z][A-Za-z'’-]*/g;

/** Capitalised words that are not names. */
const NOT_NAMES = new Set(
  [
    'i', "i'm", "i've", "i'll", "i'd", 'the', 'a', 'an', 'this', 'that', 'these', 'those', 'your', 'you', 'we', 'our', 'my', 'it', 'its',
    'he', 'she', 'they', 'their', 'please', 'thanks', 'thank', 'hello', 'hi', 'dear', 'yes', 'no', 'ok', 'okay', 'note', 'also',
    'however', 'here', 'there', 'mr', 'mrs', 'ms', 'dr', 'and', 'or', 'but', 'for', 'with', 'from', 'to', 'in', 'on', 'at', 'by',
    'january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december',
    'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday', 'today', 'tomorrow', 'yesterday',
  ],
);

/** The entities in `text` a reader could check: URLs, emails, money, codes, numbers of 3+ digits, proper names. */
export function extractEntities(text: string): Entity[] {
  const entities: Entity[] = [];
  let rest = text;
  const take = (kind: EntityKind, pattern: RegExp, keep: (match: string) => boolean = () => true) => {
    rest = rest.replace(pattern, (match: string) => {
      const trimmed = match.replace(/[.,;:!?]+$/, '');
      if (keep(trimmed)) entities.push({ kind, text: trimmed });
      return ' '.repeat(match.length);
    });
  };
  take('url', URL_PATTERN);
  take('email', EMAIL_PATTERN);
  take('money', MONEY_PATTERN);
  take('code', CODE_PATTERN, (match) => match.replace(/-/g, '').length >= 4);
  take('number', NUMBER_PATTERN, (match) => (match.split('.')[0] ?? '').replace(/,/g, '').length >= 3);
  entities.push(...properNames(rest));
  return entities;
}

/**
 * Runs of capitalised words. A lone capitalised word that starts a sentence is not taken for a
 * name (it is capitalised for being first); common words such as `The` or `Your` never are.
 */
function properNames(text: string): Entity[] {
  const names: Entity[] = [];
  let words: string[] = [];
  let sentenceStart = false;
  let previousEnd = 0;
  const flush = () => {
    const candidates = sentenceStart && words.length === 1 ? [] : words;
    const kept = candidates.filter((word) => !NOT_NAMES.has(word.toLowerCase()));
    if (kept.length > 0) names.push({ kind: 'name', text: kept.join(' ') });
    words = [];
  };
  for (const match of text.matchAll(WORD_PATTERN)) {
    const word = match[0];
    const start = match.index;
    const between = text.slice(previousEnd, start);
    previousEnd = start + word.length;
    if (!/^[A-Z][a-z]/.test(word)) {
      flush();
      continue;
    }
    if (words.length > 0 && /^ +$/.test(between)) {
      words.push(word);
      continue;
    }
    flush();
    const before = text.slice(0, start).trimEnd();
    sentenceStart = before === '' || /[.!?:\n•*-]$/.test(before);
    words = [word];
  }
  flush();
  return names;
}

/** Entities of `answer` found nowhere in `evidence`. */
export function unsupportedEntities(answer: string, evidence: string): Entity[] {
  const haystack = evidence.toLowerCase();
  const numbers = new Set([...evidence.matchAll(NUMBER_PATTERN)].map((match) => numberValue(match[0])));
  const words = new Set([...haystack.matchAll(/[a-z0-9][a-z0-9'’-]*/g)].map((match) => match[0]));
  const seen = new Set<string>();
  return extractEntities(answer).filter((entity) => {
    const key = `${entity.kind}:${entity.text.toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    switch (entity.kind) {
      case 'money':
      case 'number': {
        const digits = /\d[\d,]*(?:\.\d+)?/.exec(entity.text)?.[0] ?? '';
        return !numbers.has(numberValue(digits));
      }
      case 'name':
        return !entity.text
          .toLowerCase()
          .split(/\s+/)
          .every((word) => words.has(word) || words.has(word.replace(/['’]s$/, '')));
      default:
        return !haystack.includes(entity.text.toLowerCase().replace(/\/$/, ''));
    }
  });
}

function numberValue(text: string): number {
  return Number.parseFloat(text.replace(/,/g, ''));
}

function describeKinds(entities: readonly Entity[]): string {
  const counts = new Map<EntityKind, number>();
  for (const entity of entities) counts.set(entity.kind, (counts.get(entity.kind) ?? 0) + 1);
  const names: Record<EntityKind, [string, string]> = {
    url: ['URL', 'URLs'],
    email: ['email address', 'email addresses'],
    money: ['amount of money', 'amounts of money'],
    code: ['code', 'codes'],
    number: ['number', 'numbers'],
    name: ['name', 'names'],
  };
  return [...counts.entries()].map(([kind, count]) => `${count} ${names[kind][count === 1 ? 0 : 1]}`).join(', ');
}
