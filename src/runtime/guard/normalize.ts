import { domainToUnicode } from 'node:url';
import confusables from 'unhomoglyph/data.json';

/**
 * The forms values are compared in. A value can be written many ways that a model reads as one:
 * in another Unicode form (fullwidth, mathematical letters, decomposed accents), with invisible
 * characters inside, in another case, with other separators, or, for a host, in another notation
 * (a trailing dot, punycode or Unicode, an IPv4 address as one number). Each function here takes
 * text to one of those forms.
 *
 * Two strengths, used on purpose on different sides of the taint rule: `canonical` keeps what
 * tells two values apart (a Cyrillic `а` is not a Latin `a`, `my-corp.test` is not
 * `mycorp.test`) and decides whether a value is the user's; `skeleton` also folds lookalike
 * letters (Unicode's confusables), accents and every separator, and decides whether a value could
 * have come from untrusted content. A lookalike of the user's address is then found in the
 * document that carried it and is not mistaken for the user's own.
 */

/** Every default-ignorable code point (Unicode's Default_Ignorable_Code_Point): zero-width characters, joiners, soft hyphens, bidi controls, variation selectors, tag characters, fillers. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
/** Full stops that IDNA reads as the dot between a host's labels (after NFKC, which takes `．` and `｡` to these). */
const IDEOGRAPHIC_STOP = /\u3002/g;
/** Latin small capitals, which the confusables table does not take to their letters. */
const SMALL_CAPITALS: Readonly<Record<string, string>> = Object.fromEntries(
  [...'ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡxʏᴢ'].map((char, index) => [char, String.fromCharCode(97 + index)]).filter(([char]) => char !== 'x'),
);
const SMALL_CAPITAL = new RegExp(`[${Object.keys(SMALL_CAPITALS).join('')}]`, 'gu');
const MARKS = /\p{M}/gu;
const CAPITAL = /\p{Lu}/gu;
const NOT_ALNUM = /[^\p{L}\p{N}]+/gu;

/** Text as it reads: NFKC, without default-ignorable code points. */
export function visible(text: string): string {
  return text.replace(IGNORABLE, '').normalize('NFKC').replace(IGNORABLE, '').replace(IDEOGRAPHIC_STOP, '.');
}

/** Visible text in lower case: what decides whether a value is the user's. */
export function canonical(text: string): string {
  return visible(text).toLowerCase();
}

/**
 * Visible text with accents, lookalike letters (Unicode's confusables) and case folded away.
 * Capitals are folded before case is: Greek `Β` and Cyrillic `В` are a `B` and so a `b`, which
 * their small letters `β` and `в` are not.
 */
export function skeleton(text: string): string {
  const folded = visible(text)
    .normalize('NFD')
    .replace(MARKS, '')
    .replace(SMALL_CAPITAL, (char) => SMALL_CAPITALS[char] ?? char)
    .replace(CAPITAL, (char) => {
      const prototype = PROTOTYPES.get(char) ?? char;
      return /^[A-Z]+$/.test(prototype) ? prototype.toLowerCase() : char.toLowerCase();
    });
  return prototypes(folded.toLowerCase()).toLowerCase();
}

/** Each character's prototype in Unicode's confusables (UTS #39): `а` (Cyrillic) and `a` are both `a`. */
const PROTOTYPES: ReadonlyMap<string, string> = new Map(Object.entries(confusables as Readonly<Record<string, string>>));

function prototypes(text: string): string {
  let out = '';
  for (const char of text) out += PROTOTYPES.get(char) ?? char;
  return out;
}

/** Only the letters and digits of a text: separators, spaces and punctuation folded away. */
export function alnum(text: string): string {
  return text.replace(NOT_ALNUM, '');
}

/**
 * A host in one form: lower case, ASCII (punycode) labels, no trailing dot, IPv4 in dotted
 * decimal however it was written (`2130706433`, `0x7f.1`, `::ffff:127.0.0.1`), with the port
 * when one is given and is not the scheme's default. Undefined when it is not a host.
 */
export function canonicalHost(host: string, scheme = 'http'): { readonly hostname: string; readonly host: string } | undefined {
  let url: URL;
  try {
    url = new URL(`${scheme}://${visible(host)}/`);
  } catch {
    return undefined;
  }
  let hostname = url.hostname.replace(/\.$/, '');
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(hostname);
  if (mapped) {
    const high = Number.parseInt(mapped[1]!, 16);
    const low = Number.parseInt(mapped[2]!, 16);
    hostname = [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  if (hostname === '' || (!hostname.includes('.') && !hostname.startsWith('[') && hostname !== 'localhost')) return undefined;
  return { hostname, host: url.port === '' ? hostname : `${hostname}:${url.port}` };
}

/** The Unicode form of a host's punycode labels (`xn--…`), for reading text that writes hosts that way. */
export function unicodeHost(hostname: string): string {
  return hostname.includes('xn--') ? domainToUnicode(hostname) || hostname : hostname;
}

/** Text that matches itself in a regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
