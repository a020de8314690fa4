/**
 * What a model can read in text that a person does not see: Unicode tag characters (invisible
 * ASCII), base64 that decodes to text, HTML character references and percent-encoding. The screen
 * looks for instructions in these readings, and the taint rule for values.
 */

const TAGS = /[\u{E0000}-\u{E007F}]+/gu;
const BASE64 = /(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])/g;
/** Longer base64 than this is data (an image, a file), not a hidden instruction. */
const MAX_ENCODED = 8192;
const MAX_CANDIDATES = 50;
const ENTITY = /&(?:#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/i;
const PERCENT = /%[0-9a-f]{2}/i;
const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', colon: ':', sol: '/', period: '.', commat: '@', num: '#' };

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
  const decoded: string[] = [];
  let candidates = 0;
  for (const match of text.matchAll(BASE64)) {
    if (match[0].length > MAX_ENCODED) continue;
    if (++candidates > MAX_CANDIDATES) break;
    const plain = Buffer.from(match[0], 'base64').toString('utf8');
    if (isPlainText(plain)) decoded.push(plain);
  }
  return decoded;
}

/** The other readings of `text` (none for text with nothing encoded in it). */
export function hiddenReadings(text: string): string[] {
  const readings = [...decodeTags(text), ...decodeBase64Text(text)];
  if (ENTITY.test(text)) readings.push(decodeEntities(text));
  if (PERCENT.test(text)) {
    try {
      readings.push(decodeURIComponent(text));
    } catch {
      readings.push(text.replace(/%([0-9a-f]{2})/gi, (_whole, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))));
    }
  }
  return readings;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]{1,6});/gi, (_whole, hex: string) => safeCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d{1,7});/g, (_whole, digits: string) => safeCodePoint(Number(digits)))
    .replace(/&([a-z]{2,8});/gi, (whole, name: string) => NAMED[name.toLowerCase()] ?? whole);
}

function safeCodePoint(code: number): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : '';
}

/** Mostly printable text with words in it, as instructions are (binary and ids are not). */
function isPlainText(decoded: string): boolean {
  if (decoded.length < 12 || !decoded.includes(' ')) return false;
  let printable = 0;
  let total = 0;
  for (const char of decoded) {
    total += 1;
    if (/[\p{L}\p{N}\p{P}\p{S}\p{Zs}\n\r\t]/u.test(char)) printable += 1;
  }
  return printable / total >= 0.95;
}
