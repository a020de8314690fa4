import type { ToolChannel } from './config';
import { hiddenReadings } from './reveal';

/**
 * Taint tracking for side effects. The run's trusted text is what the agent's author and the user
 * wrote (the instructions and the run's input); untrusted text is every tool result since. An
 * argument value found in untrusted text and nowhere in trusted text came from a document or a
 * tool's output, not from the person who asked: a recipient an email named, a URL a web page
 * gave, an account number in an invoice. The side effect that carries it is then held for a
 * person (or refused), per policy.
 *
 * What it compares: each string argument that names something (one token such as an address, an
 * account id or a code, or digits grouped by spaces such as an IBAN; up to 120 characters) as a
 * whole; the URLs (by host and port), email addresses, IBANs and long digit runs inside any string
 * argument, free text included; and numbers (integers from -9 to 9 are too common to tell anything). Values are compared case-insensitively, ignoring
 * spaces, hyphens and invisible characters, and numbers by value (`1,250.00` is 1250); untrusted
 * text is also read as a model could read it (tag characters, base64, character references,
 * percent-encoding and `name [at] host [dot] com` decoded). Arguments
 * whose schema allows only fixed values (an enum, a constant, a boolean) are not compared. A value
 * the model assembles from pieces ("the domain from one page, the name from another") or
 * paraphrases is not traced.
 */

export interface UntrustedSource {
  /** The journal step that produced it. */
  readonly seq: number;
  readonly tool: string;
  readonly channel: ToolChannel;
  readonly text: string;
}

export interface TaintedArgument {
  /** Where the value sits in the arguments: `to`, `payee.account`, `recipients[0]`. */
  readonly path: string;
  /** The value, or the part of it (a host, an address) that was found. */
  readonly value: string;
  /**
   * Whether it says where something goes: an email address, a URL's host, an IBAN, or an account
   * or card number (8 digits or more). Ids, names, dates and amounts are not.
   */
  readonly destination: boolean;
  /** The first untrusted content it appears in. */
  readonly source: { readonly seq: number; readonly tool: string; readonly channel: ToolChannel };
}

const INVISIBLE = /[\u200B-\u200F\u2060-\u2064\uFEFF\u00AD\u180E]/g;
const URL_PATTERN = /\b(?:https?|ftp|wss?):\/\/[^\s<>"'`)\]}]+/gi;
const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu;
const IBAN = /\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,4})?\b/gi;
const DIGIT_RUN = /(?<![\d])\d(?:[ -]?\d){5,}(?![\d])/g;
const NUMBER = /\d[\d,]*(?:\.\d+)?/g;
const SPELLED_ADDRESS = /([\p{L}\p{N}._%+-]+)\s*(?:\[at\]|\(at\)|\{at\}|\sat\s)\s*([\p{L}\p{N}-]+)\s*(?:\[dot\]|\(dot\)|\{dot\}|\sdot\s)\s*([\p{L}]{2,})/giu;
const MAX_ATOMIC = 120;
const SHORT = 6;
/** Digits in a run that make it an account, card or phone number rather than an id. */
const ACCOUNT_DIGITS = 8;

/** Text compared case-insensitively, without invisible characters, `[.]`-style defanging or spelled-out addresses. */
function normalize(text: string): string {
  return text
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(SPELLED_ADDRESS, '$1@$2.$3')
    .replace(/\[\.\]|\(\.\)|\{\.\}/g, '.')
    .replace(/\bhxxp(s?):/gi, 'http$1:')
    .toLowerCase();
}

function compact(normalized: string): string {
  return normalized.replace(/[\s-]+/g, '');
}

function numbersIn(text: string): Set<number> {
  const found = new Set<number>();
  for (const match of text.matchAll(NUMBER)) {
    const value = Number(match[0].replace(/,/g, '').replace(/\.$/, ''));
    if (Number.isFinite(value)) found.add(value);
  }
  return found;
}

/** One text, ready to be searched. */
class IndexedText {
  readonly normalized: string;
  readonly compact: string;
  private numbers: Set<number> | undefined;

  constructor(text: string) {
    this.normalized = normalize(text);
    this.compact = compact(this.normalized);
  }

  /** Whether a (normalized) value appears: as a whole word when short, anywhere when long enough to be specific. */
  has(value: string): boolean {
    const packed = compact(value);
    if (packed.length >= SHORT) return this.compact.includes(packed);
    const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'u').test(this.normalized);
  }

  hasNumber(value: number): boolean {
    this.numbers ??= numbersIn(this.normalized);
    return this.numbers.has(value);
  }
}

/** The run's trusted and untrusted text, to find which argument values came only from the latter. */
export class TaintIndex {
  private readonly trustedText: string;
  private trustedIndex: IndexedText | undefined;
  private readonly sources: { readonly source: UntrustedSource; readonly text: IndexedText }[] = [];
  /** Tool results not indexed yet: indexing waits for the first call to check, which many runs never make. */
  private readonly pending: UntrustedSource[] = [];

  constructor(trusted: readonly string[]) {
    this.trustedText = trusted.join('\n');
  }

  /** Adds a tool result (its text as the model read it, before fencing). */
  add(source: UntrustedSource): void {
    this.pending.push(source);
  }

  get size(): number {
    return this.sources.length + this.pending.length;
  }

  private get trusted(): IndexedText {
    this.trustedIndex ??= new IndexedText(this.trustedText);
    return this.trustedIndex;
  }

  /**
   * The argument values found only in untrusted text, with where each came from. `schema` is the
   * tool's JSON Schema: arguments that can take only fixed values are skipped.
   */
  find(args: unknown, schema?: unknown): TaintedArgument[] {
    for (const source of this.pending.splice(0)) this.sources.push({ source, text: new IndexedText(searchableText(source.text)) });
    if (this.sources.length === 0) return [];
    const tainted: TaintedArgument[] = [];
    for (const leaf of leaves(args, '', schema)) {
      const found = this.check(leaf.value);
      if (found) tainted.push({ path: leaf.path || '(arguments)', ...found });
    }
    return tainted;
  }

  private check(value: string | number): Omit<TaintedArgument, 'path'> | undefined {
    if (typeof value === 'number') {
      if (!Number.isFinite(value) || (Number.isInteger(value) && Math.abs(value) < 10) || this.trusted.hasNumber(value)) return undefined;
      const source = this.sources.find((candidate) => candidate.text.hasNumber(value))?.source;
      return source ? { value: String(value), destination: false, source: sourceOf(source) } : undefined;
    }
    let found: Omit<TaintedArgument, 'path'> | undefined;
    for (const candidate of candidates(value)) {
      if (this.trusted.has(candidate.value)) continue;
      const source = this.sources.find((entry) => entry.text.has(candidate.value))?.source;
      if (!source) continue;
      // A destination inside the value tells more than the value as a whole: report it first.
      if (candidate.destination) return { ...candidate, source: sourceOf(source) };
      found ??= { ...candidate, source: sourceOf(source) };
    }
    return found;
  }
}

function sourceOf(source: UntrustedSource): TaintedArgument['source'] {
  return { seq: source.seq, tool: source.tool, channel: source.channel };
}

/** What of a string argument is compared: the whole of a short one, and the addresses inside any. */
function candidates(raw: string): { readonly value: string; readonly destination: boolean }[] {
  const value = normalize(raw).trim();
  const found = new Map<string, boolean>();
  const add = (candidate: string, destination: boolean) => {
    const trimmed = candidate.trim();
    if (compact(trimmed).length >= 3 && /[\p{L}\p{N}]/u.test(trimmed)) found.set(trimmed, destination || (found.get(trimmed) ?? false));
  };
  if (value.length <= MAX_ATOMIC && isIdentifier(value)) add(value, false);
  for (const match of value.matchAll(URL_PATTERN)) {
    try {
      add(new URL(match[0]).host, true);
    } catch {
      add(match[0], true);
    }
  }
  for (const match of value.matchAll(EMAIL)) add(match[0], true);
  for (const match of value.matchAll(IBAN)) add(match[0], true);
  for (const match of value.matchAll(DIGIT_RUN)) add(match[0], (match[0].match(/\d/g)?.length ?? 0) >= ACCOUNT_DIGITS);
  return [...found].map(([candidate, destination]) => ({ value: candidate, destination }));
}

/**
 * A value that names something rather than says something: one token (an address, an account id,
 * a code, a URL), or digits grouped by spaces (an IBAN, a card or phone number). Free text (a
 * subject, a title, a message) is compared only by the addresses and numbers inside it.
 */
function isIdentifier(value: string): boolean {
  if (!/\s/.test(value)) return true;
  return /^[\p{L}\p{N}\s-]+$/u.test(value) && (value.match(/\d/g)?.length ?? 0) >= 4;
}

/**
 * Tool output as searchable text: JSON unescaped to its string and number leaves (so `\u0040` is
 * `@`), and what hides in it read out (tag characters, base64, character references, percent-encoding).
 */
function searchableText(content: string): string {
  const parts = [content];
  const trimmed = content.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[') || trimmed.startsWith('"')) {
    try {
      for (const leaf of leaves(JSON.parse(content), '', undefined)) parts.push(String(leaf.value));
    } catch {
      // Not JSON after all: the text as it is.
    }
  }
  return [...parts, ...parts.flatMap(hiddenReadings)].join('\n');
}

/** Every string and number in a value, with its path, skipping those the schema fixes. */
function* leaves(value: unknown, path: string, schema: unknown): Generator<{ path: string; value: string | number }> {
  if (isFixed(schema)) return;
  if (typeof value === 'string' || typeof value === 'number') {
    yield { path, value };
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) yield* leaves(item, `${path}[${index}]`, itemSchema(schema));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) yield* leaves(item, path ? `${path}.${key}` : key, propertySchema(schema, key));
  }
}

function schemaRecord(schema: unknown): Record<string, unknown> | undefined {
  return typeof schema === 'object' && schema !== null && !Array.isArray(schema) ? (schema as Record<string, unknown>) : undefined;
}

/** Whether a schema allows only fixed values: an enum, a constant, a boolean, or a union of those. */
function isFixed(schema: unknown): boolean {
  const record = schemaRecord(schema);
  if (!record) return false;
  if ('enum' in record || 'const' in record || record['type'] === 'boolean') return true;
  const union = record['anyOf'] ?? record['oneOf'];
  return Array.isArray(union) && union.length > 0 && union.every((member) => isFixed(member) || schemaRecord(member)?.['type'] === 'null');
}

function propertySchema(schema: unknown, key: string): unknown {
  const record = schemaRecord(schema);
  if (!record) return undefined;
  const own = schemaRecord(record['properties'])?.[key];
  if (own !== undefined) return own;
  const union = record['anyOf'] ?? record['oneOf'] ?? record['allOf'];
  if (Array.isArray(union)) {
    for (const member of union) {
      const found = propertySchema(member, key);
      if (found !== undefined) return found;
    }
  }
  const additional = record['additionalProperties'];
  return typeof additional === 'object' ? additional : undefined;
}

function itemSchema(schema: unknown): unknown {
  const record = schemaRecord(schema);
  if (!record) return undefined;
  const items = record['items'];
  return Array.isArray(items) ? undefined : items;
}
