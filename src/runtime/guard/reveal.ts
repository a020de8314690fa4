import { spelledReading } from './spelled';

/**
 * What a model can read in text that a person does not see: Unicode tag characters (invisible
 * ASCII), encodings (base64, hex, percent-encoding, character references...) and values written
 * out in words. The screen looks for instructions in some of these readings, and the taint rule
 * for values in all of them.
 */

const TAGS = /[\u{E0000}-\u{E007F}]+/gu;
const BASE64 = /(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])/g;
/** Longer base64 than this is data (an image, a file), not a hidden instruction. */
const MAX_ENCODED = 8192;
const MAX_CANDIDATES = 200;
const ENTITY = /&(?:#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8};)/i;
const PERCENT = /%[0-9a-f]{2}/i;
const NAMED: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  colon: ':',
  sol: '/',
  bsol: '\\',
  period: '.',
  commat: '@',
  num: '#',
  lowbar: '_',
  hyphen: '-',
  dash: '-',
  plus: '+',
  equals: '=',
  quest: '?',
  percnt: '%',
  comma: ',',
  semi: ';',
};

/** Each run of tag characters, as the ASCII it stands for. */
export function decodeTags(text: string): string[] {
  const decoded: string[] = [];
  for (const match of text.matchAll(TAGS)) {
    const ascii = [...match[0]].map((char) => String.fromCodePoint((char.codePointAt(0) ?? 0xe0000) - 0xe0000)).join('');
    if (ascii.trim() !== '') decoded.push(ascii);
  }
  return decoded;
}

/** Each base64 blob that decodes to plain text with words in it (not an image, not an id). */
export function decodeBase64Text(text: string): string[] {
  return [...limited(text.matchAll(BASE64))].map((match) => Buffer.from(match[0], 'base64').toString('utf8')).filter(isPlainText);
}

/** Whole-text transforms that cost a pass over the text each: done on this much of it. */
const MAX_READ = 256 * 1024;
const BASE64_TOKEN = /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{8,}={0,2}(?![A-Za-z0-9+/=_-])/g;
const BASE32_TOKEN = /(?<![A-Za-z0-9=])[A-Z2-7]{16,}={0,6}(?![A-Za-z0-9=])/g;
/** Bytes in hex: `6d616c`, `6d 61 6c`, `\x6d\x61`, `0x6d 0x61`, `6d:61:6c`. */
const HEX_RUN = /(?:(?:\\x|0x)?[0-9a-f]{2}[\s:,-]?){4,}/gi;
const ESCAPE = /\\u\{([0-9a-f]{1,6})\}|\\u([0-9a-f]{4})|\bU\+([0-9a-f]{4,6})\b/gi;
const PERCENT_RUN = /(?:%[0-9a-f]{2})+/gi;
const QUOTED_PRINTABLE = /=[0-9A-F]{2}/;
/** Bytes as octal escapes: `\155\141`. */
const OCTAL_RUN = /(?:\\[0-3][0-7]{2}){2,}/g;
/** Characters as their decimal codes: `109 97 108 108 111 114 121`. */
const CODE_RUN = /(?<![\d.])(?:\d{2,6}[\s,;]+){3,}\d{2,6}(?![\d.])/g;
const QUOTED_PRINTABLE_RUN = /(?:=[0-9A-F]{2})+/g;
const ROT13 = /[a-z]/gi;
/** A word of prose, which a base64 token could look like but is not. */
const WORD = /^[A-Z]?[a-z]+$|^[A-Z]+$/;

/**
 * Every reading of `text` a model could make besides the text as it is: hidden characters read
 * out (tag characters), encodings decoded (base64 and base64url, base32, hex, octal and `\u`
 * escapes, decimal character codes, percent-encoding (twice over too), character references,
 * quoted-printable, rot13, the text reversed) and values
 * written out in words read as values. A decoded piece is read once more, so that one encoding
 * inside another is found too.
 */
export function readings(text: string, depth = 2): string[] {
  const found: string[] = [...decodeTags(text)];
  const pieces: string[] = [];
  for (const match of limited(text.matchAll(BASE64_TOKEN), (token) => !WORD.test(token))) pieces.push(printable(Buffer.from(match[0], 'base64')));
  for (const match of limited(text.matchAll(BASE32_TOKEN))) pieces.push(printable(base32(match[0])));
  for (const match of limited(text.matchAll(HEX_RUN))) pieces.push(printable(Buffer.from(match[0].replace(/\\x|0x|[\s:,-]/gi, ''), 'hex')));
  const decoded = pieces.filter((piece) => piece !== '');
  found.push(...decoded);
  const whole = text.length > MAX_READ ? text.slice(0, MAX_READ) : text;
  if (ENTITY.test(whole)) found.push(decodeEntities(whole));
  if (PERCENT.test(whole)) {
    // Percent-encoding of percent-encoding (`%2540`) is read to the end.
    let read = whole;
    for (let pass = 0; pass < 3 && PERCENT.test(read); pass += 1) {
      read = read.replace(PERCENT_RUN, bytesAsText('%'));
      found.push(read);
    }
  }
  if (whole.search(OCTAL_RUN) >= 0) found.push(whole.replace(OCTAL_RUN, (run) => asText(Buffer.from(run.split('\\').slice(1).map((octal) => Number.parseInt(octal, 8))), run)));
  for (const match of limited(text.matchAll(CODE_RUN))) {
    const codes = match[0].split(/[\s,;]+/).map(Number);
    if (codes.every((code) => code >= 32 && code <= 0x10ffff)) found.push(String.fromCodePoint(...codes));
  }
  if (QUOTED_PRINTABLE.test(whole)) found.push(whole.replace(/=\r?\n/g, '').replace(QUOTED_PRINTABLE_RUN, bytesAsText('=')));
  if (whole.search(ESCAPE) >= 0) found.push(whole.replace(ESCAPE, (_whole, braced?: string, four?: string, plus?: string) => safeCodePoint(Number.parseInt(braced ?? four ?? plus ?? '', 16))));
  const spelled = spelledReading(whole);
  if (spelled !== undefined) found.push(spelled);
  if (depth === 2) {
    found.push(whole.replace(ROT13, (char) => String.fromCharCode(((char.charCodeAt(0) & 31) + 12) % 26 + (char.charCodeAt(0) & 96) + 1)));
    found.push([...whole].reverse().join(''));
  }
  if (depth > 1) for (const piece of decoded) found.push(...readings(piece, depth - 1));
  return found;
}

/** At most MAX_CANDIDATES matches that `wanted` keeps, skipping those too long to be a hidden value. */
function* limited(matches: Iterable<RegExpMatchArray>, wanted: (token: string) => boolean = () => true): Generator<RegExpMatchArray> {
  let count = 0;
  for (const match of matches) {
    if (match[0].length > MAX_ENCODED || !wanted(match[0])) continue;
    if (++count > MAX_CANDIDATES) return;
    yield match;
  }
}

/** A replacer that reads a run of escaped bytes (`%40`, `=C3=A9`) as UTF-8, leaving it as it is when it is not. */
function bytesAsText(escape: string): (run: string) => string {
  return (run) => asText(Buffer.from(run.split(escape).join(''), 'hex'), run);
}

/** Bytes as UTF-8 text, or `otherwise` when they are not UTF-8. */
function asText(bytes: Buffer, otherwise: string): string {
  const text = bytes.toString('utf8');
  return text.includes('\uFFFD') ? otherwise : text;
}

/** Decoded bytes as text when they are text (valid UTF-8, printable), else ''. */
function printable(bytes: Buffer): string {
  if (bytes.length < 4) return '';
  const text = bytes.toString('utf8');
  return !text.includes('\uFFFD') && printableShare(text) >= 0.9 ? text : '';
}

function base32(token: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of token.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 255);
      bits -= 8;
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(bytes);
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]{1,6});?/gi, (_whole, hex: string) => safeCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d{1,7});?/g, (_whole, digits: string) => safeCodePoint(Number(digits)))
    .replace(/&([a-z]{2,8});/gi, (whole, name: string) => NAMED[name.toLowerCase()] ?? whole);
}

function safeCodePoint(code: number): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : '';
}

/** Mostly printable text with words in it, as instructions are (binary and ids are not). */
function isPlainText(decoded: string): boolean {
  return decoded.length >= 12 && decoded.includes(' ') && printableShare(decoded) >= 0.95;
}

/** The share of a text's characters that are letters, digits, punctuation, symbols or spaces. */
function printableShare(text: string): number {
  let shown = 0;
  let total = 0;
  for (const char of text) {
    total += 1;
    if (/[\p{L}\p{N}\p{P}\p{S}\p{Zs}\n\r\t]/u.test(char)) shown += 1;
  }
  return total === 0 ? 0 : shown / total;
}
