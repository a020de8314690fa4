import type { ToolChannel } from './config';
import { alnum, canonical, canonicalHost, escapeRegExp, skeleton, unicodeHost, visible } from './normalize';
import { readings } from './reveal';

/**
 * Taint tracking for side effects. Trusted text is what the user and the agent's author wrote (the
 * run's input, the instructions, the tools' descriptions and defaults) and the results of tools
 * the agent trusts (the user's own records, a source the user named); untrusted text is every
 * other tool result. An argument value found in untrusted text and not in trusted text came from
 * a document or a tool's output, not from the person who asked: a recipient an email named, a URL
 * a web page gave, an account number in an invoice. The side effect that carries it is then held
 * for a person (or refused), per policy.
 *
 * What is compared: every string and number of the arguments, nested ones included. A string
 * that names something (anything but prose: a message body, a subject, a note) is compared as a
 * whole, one word or several; inside any string, prose included, the URLs (by host), email
 * addresses, IBANs and long digit runs are compared on their own; and a destination written in
 * untrusted text is found when the call spreads it over several of its fields (`user` and
 * `domain`, a bank code and an account number). Arguments whose schema allows only fixed values
 * (an enum, a constant, a boolean) are not compared.
 *
 * How: untrusted text is read every way a model could read it (see `readings`: encodings decoded,
 * hidden characters read out, numbers and addresses written in words read as values), and both
 * sides are normalized (see normalize.ts): to decide that a value is the user's, it must be there
 * in canonical form (NFKC, without default-ignorable code points, any case; hosts in one form;
 * account numbers with any separators); to decide that it could have come from untrusted text,
 * lookalike letters, accents and all separators are folded away too, and a value put together
 * from up to three pieces of one text counts. A value the model paraphrases, translates or
 * computes is not traced.
 */

export interface UntrustedSource {
  /** The journal step that produced it. */
  readonly seq: number;
  readonly tool: string;
  readonly channel: ToolChannel;
  readonly text: string;
}

export interface TaintedArgument {
  /** Where the value sits in the arguments: `to`, `payee.account`, `recipients[0]`; `user + domain` for one spread over fields. */
  readonly path: string;
  /** The value, or the part of it (a host, an address) that was found. */
  readonly value: string;
  /**
   * Whether it says where something goes or to whom: an email address, a host, an IBAN, an
   * account, card or phone number (8 digits or more), a postal address, or any value of an
   * argument named for a destination (`to`, `payee`, `address`, `url`, `account`...).
   */
  readonly destination: boolean;
  /** The first untrusted content it appears in. */
  readonly source: { readonly seq: number; readonly tool: string; readonly channel: ToolChannel };
}

/** What a call's arguments are checked with: the tool's JSON Schema (fixed values are skipped) and its name (a tool named for a destination makes its arguments destinations). */
export interface CallShape {
  readonly schema?: unknown;
  readonly tool?: string;
}

const URL_PATTERN = /\b[a-z][a-z0-9+.-]{1,15}:[\\/]{2}[^\s<>"'`)}]+/giu;
const EMAIL = /[\p{L}\p{N}._%+-]+@(?:[\p{L}\p{N}-]+\.)+[\p{L}\p{N}-]+\.?/gu;
const BARE_HOST = /(?<![\p{L}\p{N}@._-])(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}[\p{L}\p{N}-]{1,62}\.?(?::\d{1,5})?(?![\p{L}\p{N}_-])/gu;
const HOST_VALUE = /^(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}[\p{L}\p{N}-]{1,62}\.?(?::\d{1,5})?$/u;
const IBAN = /\b[a-z]{2}\d{2}(?:[ -]?[a-z0-9]{4}){2,7}(?:[ -]?[a-z0-9]{1,4})?\b/gi;
const DIGIT_RUN = /(?<![\p{L}\p{N}])\d(?:[ -]?\d){5,}(?![\p{L}\p{N}])/gu;
const NUMBER = /(?<![\d.,])\d{1,3}(?:\.\d{3})+,\d{1,2}(?![\d])|\d[\d,]*(?:\.\d+)?/g;
const IP_LITERAL = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/;
const POSTAL = /\b\d+[a-z]?,?\s+(?:[\p{L}'.-]+\s+){0,4}(?:street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|way|court|ct|place|pl|square|sq|terrace|close|crescent|highway|hwy|parkway|pkwy)\b|\b(?:rue|via|calle|avenida|chemin|rua)\s+\p{L}|\p{L}(?:straße|strasse|str\.|weg|gasse|platz)\s*\d/iu;
/** Longest string compared as a whole; longer ones are prose. */
const MAX_WHOLE = 120;
const MAX_WHOLE_WORDS = 10;
/** Values of fewer letters and digits are compared as whole words; longer ones anywhere. */
const SHORT = 6;
/** Digits in a run that make it an account, card or phone number rather than an id. */
const ACCOUNT_DIGITS = 8;
/** Fewest letters and digits a value spread over fields, or put together from pieces, must have to be looked for. */
const ASSEMBLED = 8;
const MAX_PIECES = 3;
const MIN_PIECE = 2;

/** Words of argument names that say the value is a destination. */
const DESTINATION_WORDS = new Set(
  'to cc bcc recipient recipients payee beneficiary account iban bic swift routing card wallet address addr street city zip postcode postal email mail phone mobile fax tel url uri link href endpoint webhook callback host hostname domain server destination dest target ship shipping deliver delivery forward owner assignee invitee member username login holder contact share'.split(' '),
);
/** Words of tool names that say every argument names a destination (the tool sets one). */
const DESTINATION_TOOL_WORDS = new Set('payee payees recipient recipients beneficiary address contact invite invitee member forward forwarding redirect webhook shipping share'.split(' '));
/** Words of argument names that say the value is prose: compared only by what names something inside it. */
const PROSE_WORDS = new Set('subject body text message msg content summary description desc comment comments note notes title caption reason details html markdown prompt question answer reply'.split(' '));

/** One text read every way a model could read it, ready to be searched. */
class ReadText {
  /** The text and its readings, visible (case kept, for folding lookalike capitals). */
  private readonly shown: string;
  /** The text and its readings, canonical. */
  readonly canonical: string;
  readonly hosts = new Set<string>();
  readonly emails = new Set<string>();
  private numberSet: Set<number> | undefined;
  private folded: { readonly skeleton: string; readonly alnum: string } | undefined;
  private named: readonly Candidate[] | undefined;

  constructor(text: string) {
    // JSON is read by its string leaves (so that `\\u0040` is `@` and an encoding inside a field is decoded).
    const leaves = jsonLeaves(text);
    const read = leaves.length > 0 ? leaves.join('\n') : text;
    this.shown = [text, ...(read === text ? [] : [read]), ...readings(read)].map(visible).join('\n');
    this.canonical = this.shown.toLowerCase();
    for (const match of this.canonical.matchAll(URL_PATTERN)) {
      const url = parseUrl(match[0]);
      if (url) this.addHost(url.host, url.explicitPort);
    }
    for (const match of this.canonical.matchAll(EMAIL)) {
      const email = canonicalEmail(match[0]);
      if (email) {
        this.emails.add(email.address);
        this.hosts.add(email.hostname);
      }
    }
    for (const match of this.canonical.matchAll(BARE_HOST)) {
      const host = canonicalHost(match[0]);
      if (host) this.addHost(host, host.host !== host.hostname);
    }
  }

  private addHost(host: { readonly hostname: string; readonly host: string }, explicitPort: boolean): void {
    this.hosts.add(host.host);
    if (!explicitPort) this.hosts.add(host.hostname);
  }

  get numbers(): Set<number> {
    this.numberSet ??= numbersIn(this.canonical);
    return this.numberSet;
  }

  /** The text with lookalikes, accents and (in `alnum`) every separator folded away, and hosts also in Unicode. */
  get fold(): { readonly skeleton: string; readonly alnum: string } {
    if (!this.folded) {
      const unicode = [...this.hosts].filter((host) => host.includes('xn--')).map(unicodeHost);
      const text = skeleton([this.shown, ...unicode].join('\n'));
      this.folded = { skeleton: text, alnum: alnum(text) };
    }
    return this.folded;
  }

  /** The destinations it names (see destinationsIn), found once. */
  get destinations(): readonly Candidate[] {
    this.named ??= destinationsIn(this);
    return this.named;
  }

  /** Whether this (canonical) text has `words` as whole words, in any order. */
  hasWords(words: readonly string[]): boolean {
    return words.length > 0 && words.every((word) => wholeWord(word).test(this.canonical));
  }
}

/** Something in an argument that is compared. */
interface Candidate {
  readonly kind: 'host' | 'email' | 'account' | 'number' | 'value';
  /** As reported. */
  readonly value: string;
  readonly destination: boolean;
  readonly host?: { readonly hostname: string; readonly host: string };
  readonly number?: number;
  /** The value as written, case kept (lookalike capitals fold to their letters, small ones may not). */
  readonly shown?: string;
  /** The value it is part of: the user's when that is. */
  readonly whole?: Candidate;
}

interface Leaf {
  readonly path: string;
  readonly value: string | number;
  readonly prose: boolean;
  readonly destination: boolean;
}

/** The run's trusted and untrusted text, to find which argument values came only from the latter. */
export class TaintIndex {
  private readonly trustedTexts: string[];
  private trustedIndex: ReadText[] = [];
  private readonly sources: { readonly source: UntrustedSource; readonly text: ReadText }[] = [];
  /** Tool results not indexed yet: indexing waits for the first call to check, which many runs never make. */
  private readonly pending: UntrustedSource[] = [];

  constructor(trusted: readonly string[]) {
    this.trustedTexts = [trusted.join('\n')];
  }

  /** Adds an untrusted tool result (its text as the model read it, before fencing). */
  add(source: UntrustedSource): void {
    this.pending.push(source);
  }

  /** Adds text the user vouches for: a result of a tool the agent trusts. */
  addTrusted(text: string): void {
    this.trustedTexts.push(text);
  }

  get size(): number {
    return this.sources.length + this.pending.length;
  }

  private get trusted(): readonly ReadText[] {
    for (const text of this.trustedTexts.slice(this.trustedIndex.length)) this.trustedIndex.push(new ReadText(text));
    return this.trustedIndex;
  }

  /** The argument values found only in untrusted text, with where each came from. */
  find(args: unknown, call: CallShape = {}): TaintedArgument[] {
    for (const source of this.pending.splice(0)) this.sources.push({ source, text: new ReadText(source.text) });
    if (this.sources.length === 0) return [];
    const toolIsDestination = words(call.tool ?? '').some((word) => DESTINATION_TOOL_WORDS.has(word));
    const found = [...leaves(args, '', call.schema, [])].map((leaf) => ({ ...leaf, destination: leaf.destination || (toolIsDestination && !leaf.prose) }));
    const tainted: TaintedArgument[] = [];
    for (const leaf of found) {
      const hit = this.check(leaf);
      if (hit) tainted.push({ path: leaf.path || '(arguments)', ...hit });
    }
    const spread = this.spread(found.filter((leaf) => !leaf.prose && !tainted.some((hit) => hit.path === (leaf.path || '(arguments)'))));
    return spread ? [...tainted, spread] : tainted;
  }

  private check(leaf: Leaf): Omit<TaintedArgument, 'path'> | undefined {
    let found: Omit<TaintedArgument, 'path'> | undefined;
    for (const candidate of candidates(leaf)) {
      if (this.isTrusted(candidate)) continue;
      // Where it is written whole before where it can be pieced together.
      const source = (this.sources.find((entry) => isIn(candidate, entry.text, false)) ?? this.sources.find((entry) => isIn(candidate, entry.text, true)))?.source;
      if (!source) continue;
      // A destination inside the value tells more than the value as a whole: report it first.
      if (candidate.destination) return { value: candidate.value, destination: true, source: sourceOf(source) };
      found ??= { value: candidate.value, destination: false, source: sourceOf(source) };
    }
    return found;
  }

  private isTrusted(candidate: Candidate): boolean {
    return this.trusted.some((text) => vouches(text, candidate)) || (candidate.whole !== undefined && this.isTrusted(candidate.whole));
  }

  /**
   * A destination from untrusted text that the call puts together from several of its fields
   * (`{ user: 'mallory', domain: 'evil.example' }`), each too small to be found on its own.
   */
  private spread(fields: readonly Leaf[]): TaintedArgument | undefined {
    if (fields.length < 2) return undefined;
    const pieces = fields.flatMap((leaf, index) => piecesOf(leaf.value).map((piece) => ({ piece, index })));
    for (const { source, text } of this.sources) {
      for (const destination of text.destinations) {
        const target = alnum(skeleton(destination.value));
        if (target.length < ASSEMBLED || this.isTrusted(destination)) continue;
        const used = cover(target, pieces);
        if (used && used.size >= 2) {
          const paths = [...used].sort((a, b) => a - b).map((index) => fields[index]!.path);
          return { path: paths.join(' + '), value: destination.value, destination: true, source: sourceOf(source) };
        }
      }
    }
    return undefined;
  }
}

function sourceOf(source: UntrustedSource): TaintedArgument['source'] {
  return { seq: source.seq, tool: source.tool, channel: source.channel };
}

/** Whether trusted `text` vouches for `candidate`: strictly, so that a lookalike or a neighbour of the user's value is not the user's. */
function vouches(text: ReadText, candidate: Candidate): boolean {
  switch (candidate.kind) {
    case 'host':
      return text.hosts.has(candidate.host!.host);
    case 'email':
      return text.emails.has(candidate.value);
    case 'number':
      return text.numbers.has(candidate.number!);
    case 'account':
      return withAnySeparators(alnum(candidate.value)).test(text.canonical);
    case 'value': {
      const parts = wordsOf(candidate.value);
      return parts.length > 1 ? text.hasWords(parts) : withAnySeparators(alnum(candidate.value)).test(text.canonical);
    }
  }
}

/** Whether `candidate` could have come from untrusted `text`: loosely, through lookalikes, separators and (when `pieces`) pieces. */
function isIn(candidate: Candidate, text: ReadText, pieces: boolean): boolean {
  switch (candidate.kind) {
    case 'number':
      return text.numbers.has(candidate.number!);
    case 'host': {
      const { hostname, host } = candidate.host!;
      if (text.hosts.has(host) || text.hosts.has(hostname)) return true;
      if (IP_LITERAL.test(hostname)) return false;
      return foundFolded(unicodeHost(hostname), text, pieces);
    }
    case 'email':
      return text.emails.has(candidate.value) || foundFolded(candidate.value, text, pieces);
    case 'account':
      return foundFolded(candidate.value, text, pieces && candidate.destination);
    case 'value': {
      const shown = candidate.shown ?? candidate.value;
      if (foundFolded(shown, text, pieces && candidate.destination)) return true;
      const parts = wordsOf(skeleton(shown));
      return parts.length > 1 && nearby(parts, text.fold.skeleton, candidate.value.length * 3);
    }
  }
}

/**
 * Whether a value is in the folded text: anywhere when long enough to be specific, as a whole word
 * when short, or (when `pieces`) put together from a few pieces of it.
 */
function foundFolded(value: string, text: ReadText, pieces: boolean): boolean {
  const folded = skeleton(value);
  const packed = alnum(folded);
  if (packed.length === 0) return false;
  if (packed.length < SHORT) return wholeWord(folded.trim()).test(text.fold.skeleton);
  if (text.fold.alnum.includes(packed)) return true;
  return pieces && packed.length >= ASSEMBLED && assembled(packed, text.fold.alnum);
}

/** Whether every one of `parts` is a whole word of `text`, all within `span` characters of the first (a name in another order: `Evil, Mallory`). */
function nearby(parts: readonly string[], text: string, span: number): boolean {
  const [first, ...rest] = parts;
  if (first === undefined) return false;
  const starts = new RegExp(wholeWord(first).source, 'gu');
  let tries = 0;
  for (const match of text.matchAll(starts)) {
    if (++tries > 50) return false;
    const around = text.slice(Math.max(0, match.index - span), match.index + span);
    if (rest.every((part) => wholeWord(part).test(around))) return true;
  }
  return false;
}

/** Whether `packed` is the concatenation of at most MAX_PIECES pieces of `haystack`, each of MIN_PIECE characters or more (a country code and a number, a mailbox and a domain). */
function assembled(packed: string, haystack: string): boolean {
  let at = 0;
  for (let piece = 0; piece < MAX_PIECES && at < packed.length; piece += 1) {
    // The longest prefix of the rest that the text has (any shorter prefix of it is there too).
    let low = 0;
    let high = packed.length - at;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (haystack.includes(packed.slice(at, at + middle))) low = middle;
      else high = middle - 1;
    }
    if (low < Math.min(MIN_PIECE, packed.length - at)) return false;
    at += low;
  }
  return at === packed.length;
}

/** Which fields' pieces cover `target` end to end, or undefined when none do. */
function cover(target: string, pieces: readonly { readonly piece: string; readonly index: number }[]): Set<number> | undefined {
  const from: ({ readonly start: number; readonly index: number } | undefined)[] = new Array<{ start: number; index: number } | undefined>(target.length + 1);
  from[0] = { start: -1, index: -1 };
  for (let at = 0; at < target.length; at += 1) {
    if (!from[at]) continue;
    for (const { piece, index } of pieces) {
      if (!from[at + piece.length] && target.startsWith(piece, at)) from[at + piece.length] = { start: at, index };
    }
  }
  if (!from[target.length]) return undefined;
  const used = new Set<number>();
  for (let at = target.length; at > 0; at = from[at]!.start) used.add(from[at]!.index);
  return used;
}

/** The pieces a field's value can give to a destination spread over fields: each run of its words and digits. */
function piecesOf(value: string | number): string[] {
  const segments = skeleton(String(value))
    .split(/[^\p{L}\p{N}]+/u)
    .filter((segment) => segment !== '')
    .slice(0, 12);
  const pieces: string[] = [];
  for (let start = 0; start < segments.length; start += 1) {
    for (let end = start + 1; end <= segments.length; end += 1) {
      const piece = segments.slice(start, end).join('');
      if (piece.length >= 2) pieces.push(piece);
    }
  }
  return pieces;
}

/** The destinations an untrusted text names, each once: hosts, email addresses, IBANs and long digit runs. */
function destinationsIn(text: ReadText): Candidate[] {
  const found: Candidate[] = [];
  const seen = new Set<string>();
  for (const host of text.hosts) {
    const parsed = canonicalHost(host);
    if (parsed && !IP_LITERAL.test(parsed.hostname)) found.push({ kind: 'host', value: host, destination: true, host: parsed });
  }
  for (const email of text.emails) found.push({ kind: 'email', value: email, destination: true });
  for (const match of [...text.canonical.matchAll(IBAN), ...text.canonical.matchAll(DIGIT_RUN)]) {
    const packed = alnum(match[0]);
    if (seen.has(packed) || digitCount(match[0]) < ACCOUNT_DIGITS) continue;
    seen.add(packed);
    found.push({ kind: 'account', value: match[0], destination: true });
  }
  return found;
}

/** What of an argument is compared: the whole of one that names something, and the destinations and numbers inside any. */
function candidates(leaf: Leaf): Candidate[] {
  if (typeof leaf.value === 'number') {
    const value = leaf.value;
    // Small integers (counts, flags, ratings) are too common to tell anything.
    if (!Number.isFinite(value) || (Number.isInteger(value) && Math.abs(value) < 10)) return [];
    return [{ kind: 'number', value: String(value), number: value, destination: leaf.destination || (Number.isInteger(value) && digitCount(String(value)) >= ACCOUNT_DIGITS) }];
  }
  const value = canonical(leaf.value).trim();
  const found: Candidate[] = [];
  // A URL whose scheme is written in lookalike letters (`httрѕ://`) is found by its skeleton.
  const urls = value.search(URL_PATTERN) >= 0 ? value : skeleton(value);
  for (const match of urls.matchAll(URL_PATTERN)) {
    const url = parseUrl(match[0]);
    if (url) found.push({ kind: 'host', value: url.host.host, destination: true, host: url.host });
  }
  for (const match of value.matchAll(EMAIL)) {
    const email = canonicalEmail(match[0]);
    if (!email) continue;
    found.push({ kind: 'email', value: email.address, destination: true });
    const host = canonicalHost(email.hostname);
    if (host) found.push({ kind: 'host', value: host.host, destination: true, host });
  }
  const ibans = [...value.matchAll(IBAN)];
  for (const match of ibans) found.push({ kind: 'account', value: match[0], destination: true });
  for (const match of value.matchAll(DIGIT_RUN)) {
    // Digits inside an IBAN are the user's when the IBAN is; a number's digits after its first group (a country code) are a number of their own.
    const inside = ibans.find((iban) => iban.index <= match.index && match.index < iban.index + iban[0].length);
    const run: Candidate = { kind: 'account', value: match[0], destination: digitCount(match[0]) >= ACCOUNT_DIGITS, ...(inside ? { whole: { kind: 'account', value: inside[0], destination: true } } : {}) };
    found.push(run);
    const rest = match[0].replace(/^\d+[ -]/, '');
    if (rest !== match[0] && digitCount(rest) >= ACCOUNT_DIGITS) found.push({ kind: 'account', value: rest, destination: true, whole: run });
  }
  if (leaf.prose || found.some((candidate) => candidate.destination)) return found;
  const host = HOST_VALUE.test(value) ? canonicalHost(value) : undefined;
  if (host) return [...found, { kind: 'host', value: host.host, destination: true, host }];
  if (alnum(value).length >= 3 && /[\p{L}\p{N}]/u.test(value)) {
    found.push({ kind: 'value', value, shown: visible(leaf.value).trim(), destination: leaf.destination || POSTAL.test(value) });
    const number = /^[$€£]?\s*\d[\d,]*(?:\.\d+)?$/.test(value) ? Number(value.replace(/[$€£,\s]/g, '')) : undefined;
    if (number !== undefined && Number.isFinite(number)) found.push({ kind: 'number', value: String(number), number, destination: false });
  }
  return found;
}

function parseUrl(text: string): { readonly host: { readonly hostname: string; readonly host: string }; readonly explicitPort: boolean } | undefined {
  let url: URL;
  try {
    url = new URL(text.replace(/[.,;:!?]+$/, ''));
  } catch {
    return undefined;
  }
  if (url.host === '') return undefined;
  const host = canonicalHost(url.host, url.protocol.slice(0, -1));
  return host ? { host, explicitPort: url.port !== '' } : undefined;
}

function canonicalEmail(text: string): { readonly address: string; readonly hostname: string } | undefined {
  const at = text.lastIndexOf('@');
  const host = canonicalHost(text.slice(at + 1));
  return host ? { address: `${text.slice(0, at).toLowerCase()}@${host.hostname}`, hostname: host.hostname } : undefined;
}

function digitCount(text: string): number {
  return text.match(/\d/g)?.length ?? 0;
}

function numbersIn(text: string): Set<number> {
  const found = new Set<number>();
  for (const match of text.matchAll(NUMBER)) {
    const written = match[0];
    // `1.250,00` is European for 1250.
    const plain = /\.\d{3}.*,\d{1,2}$/.test(written) ? written.replace(/\./g, '').replace(',', '.') : written.replace(/,/g, '').replace(/\.$/, '');
    const value = Number(plain);
    if (Number.isFinite(value)) found.add(value);
  }
  return found;
}

/** The words and numbers of a value, for comparing names of several words in any order. */
function wordsOf(value: string): string[] {
  return value.split(/[^\p{L}\p{N}]+/u).filter((word) => word !== '');
}

/** A pattern for `word` as a whole word. */
function wholeWord(word: string): RegExp {
  return new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(word)}(?![\\p{L}\\p{N}])`, 'u');
}

/** A pattern for letters and digits written with any separators between them (`DE44 5001-0517`, `DE44, 5001`), as a whole. */
function withAnySeparators(packed: string): RegExp {
  const chars = [...packed].map(escapeRegExp);
  return new RegExp(`(?<![\\p{L}\\p{N}])${chars.join('[\\s,./_\\p{Pd}]*')}(?![\\p{L}\\p{N}])`, 'u');
}

/** The words of a name in code: `payeeAccount`, `payee_account`, `payee-account` are payee and account. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter((word) => word !== '');
}

/** Tool output's JSON string and number leaves, so that `\u0040` is read as `@`. */
function jsonLeaves(content: string): string[] {
  const trimmed = content.trimStart();
  if (!(trimmed.startsWith('{') || trimmed.startsWith('[') || trimmed.startsWith('"'))) return [];
  try {
    return [...leaves(JSON.parse(content), '', undefined, [])].map((leaf) => String(leaf.value));
  } catch {
    return [];
  }
}

/** Every string and number in a value, with its path and what its names say of it, skipping those the schema fixes. */
function* leaves(value: unknown, path: string, schema: unknown, names: readonly string[]): Generator<Leaf> {
  if (isFixed(schema)) return;
  if (typeof value === 'string' || typeof value === 'number') {
    const named = names.flatMap(words);
    const destination = named.some((word) => DESTINATION_WORDS.has(word));
    const prose = typeof value === 'string' && (named.some((word) => PROSE_WORDS.has(word)) || (!destination && isProse(value)));
    yield { path, value, prose, destination: destination && !prose };
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) yield* leaves(item, `${path}[${index}]`, itemSchema(schema), names);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) yield* leaves(item, path ? `${path}.${key}` : key, propertySchema(schema, key), [...names, key]);
  }
}

/** Text too long to name something: a message, a paragraph. */
function isProse(value: string): boolean {
  return value.length > MAX_WHOLE || wordsOf(value).length > MAX_WHOLE_WORDS;
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

/** Keys of a JSON Schema whose values the agent's author wrote as values: descriptions, defaults, examples, fixed values. */
const AUTHORED = new Set(['description', 'default', 'examples', 'const', 'enum', 'title']);

/**
 * The text of a tool's schema that the agent's author wrote: descriptions, defaults, examples and
 * fixed values. Values in it are the agent's own configuration, trusted like its instructions.
 */
export function schemaText(schema: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, key: string): void => {
    if (typeof node === 'string' || typeof node === 'number') {
      if (AUTHORED.has(key)) found.push(String(node));
    } else if (Array.isArray(node)) {
      for (const item of node) visit(item, key);
    } else if (typeof node === 'object' && node !== null) {
      for (const [name, item] of Object.entries(node)) visit(item, name);
    }
  };
  visit(schema, '');
  return found;
}
