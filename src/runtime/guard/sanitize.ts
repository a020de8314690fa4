import { domainToASCII } from 'node:url';
import { urlHost, type EgressPolicy } from '../sandbox/egress';
import type { RemovedLink } from './record';

/**
 * Output sanitizing against exfiltration. An injected instruction can make a model write the
 * user's data into a URL: a markdown image a renderer fetches without a click, or a link. Before a
 * run returns its answer, every image, link, autolink, link reference definition and HTML element
 * with a URL that points outside the allow-list is taken out (the link's text stays). Relative
 * links and `data:` images stay. Bare URLs in the text stay as they are: they are not fetched, and
 * following one takes a person's click.
 */

/** Which hosts an answer may point to: the agent's `guard.allowedHosts`, plus the hosts named in the run's input. */
export class AnswerAllowList {
  private readonly named: ReadonlySet<string>;

  constructor(
    private readonly policy: EgressPolicy,
    trustedText: string,
  ) {
    this.named = new Set(hostsIn(trustedText));
  }

  allows(url: URL): boolean {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    // A host named with a port allows that port; one named without, the scheme's own port.
    const host = urlHost(url).toLowerCase();
    const port = url.port === '' ? '' : `:${url.port}`;
    const names = [host, host.replace(/^www\./, ''), `www.${host}`].map((name) => `${name}${port}`);
    if (names.some((name) => this.named.has(name))) return true;
    return this.policy.match(url, 'GET').ok;
  }
}

const URL_IN_TEXT = /\b(?:https?:\/\/)?((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}{2,})(:\d+)?/giu;
const IP_URL = /\bhttps?:\/\/(\[[0-9a-f:]+\]|\d{1,3}(?:\.\d{1,3}){3})(:\d+)?/gi;

/**
 * Hosts a text mentions, in URLs, email addresses and bare domains (`example.com`), each with the
 * port written after it when there is one: `example.com`, `127.0.0.1:8080`.
 */
export function hostsIn(text: string): string[] {
  const hosts = new Set<string>();
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const ascii = domainToASCII((match[1] ?? '').toLowerCase());
    if (ascii) hosts.add(`${ascii}${match[2] ?? ''}`);
  }
  for (const match of text.matchAll(IP_URL)) hosts.add(`${(match[1] ?? '').replace(/^\[|\]$/g, '').toLowerCase()}${match[2] ?? ''}`);
  return [...hosts];
}

export interface Sanitized {
  readonly text: string;
  readonly removed: readonly RemovedLink[];
}

const TITLE = '(?:\\s+(?:"[^"\\n]*"|\'[^\'\\n]*\'|\\([^)\\n]*\\)))?';
const DESTINATION = '\\s*(<[^>\\n]*>|[^\\s)]+)';
/** A link's text: brackets may nest two deep (`[![logo](a.png) [note]](b)`). */
const LABEL = '((?:[^\\[\\]\\n\\\\]|\\\\.|\\[(?:[^\\[\\]\\n\\\\]|\\\\.|\\[(?:[^\\[\\]\\n\\\\]|\\\\.){0,200}\\]){0,300}\\]){0,500})';
const IMAGE = new RegExp(`!\\[${LABEL}\\]\\(${DESTINATION}${TITLE}\\s*\\)`, 'g');
const LINK = new RegExp(`(?<!!)\\[${LABEL}\\]\\(${DESTINATION}${TITLE}\\s*\\)`, 'g');
const REFERENCE = /^ {0,3}\[((?:[^\]\n\\]|\\.){1,999})\]:[ \t]*\n?[ \t]*(<[^>\n]*>|\S+)(?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*$/gm;
const AUTOLINK = /<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*)>/gi;
const HTML_LINK = /<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>([\s\S]{0,2000}?)<\/a\s*>/gi;
const HTML_SOURCE =
  /<(?:img|image|iframe|frame|embed|object|script|source|video|audio|track|input|link|meta|body|table|td|svg|use|form|base)\b[^>]*?\b(?:src|href|srcset|data|poster|background|action|content|xlink:href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>/gi;
const ENTITIES: Readonly<Record<string, string>> = { colon: ':', sol: '/', period: '.', amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', commat: '@', quest: '?', num: '#', equals: '=' };

/** Takes out of `text` the images and links whose URLs `allowed` refuses. */
export function sanitizeAnswer(text: string, allowed: AnswerAllowList): Sanitized {
  const removed: RemovedLink[] = [];
  /** Undefined when the URL may stay, else the host (or scheme) it pointed to. */
  const refused = (raw: string, image: boolean): string | undefined => {
    const target = resolve(raw);
    if (target.kind === 'relative') return undefined;
    if (target.kind === 'data') return image && /^data:image\//i.test(target.raw) ? undefined : 'data';
    if (target.kind === 'other') return target.scheme;
    return allowed.allows(target.url) ? undefined : target.host;
  };
  let out = text.replace(HTML_SOURCE, (whole: string, double?: string, single?: string, bare?: string) => {
    const host = refused(double ?? single ?? bare ?? '', true);
    if (host === undefined) return whole;
    removed.push({ kind: 'html', host });
    return `[image removed: ${defang(host)}]`;
  });
  out = out.replace(HTML_LINK, (whole: string, double?: string, single?: string, bare?: string, inner?: string) => {
    const host = refused(double ?? single ?? bare ?? '', false);
    if (host === undefined) return whole;
    removed.push({ kind: 'html', host });
    return `${inner ?? ''} [link removed: ${defang(host)}]`;
  });
  out = out.replace(IMAGE, (whole: string, _alt: string, destination: string) => {
    const host = refused(destination, true);
    if (host === undefined) return whole;
    removed.push({ kind: 'image', host });
    return `[image removed: ${defang(host)}]`;
  });
  out = out.replace(LINK, (whole: string, label: string, destination: string) => {
    const host = refused(destination, false);
    if (host === undefined) return whole;
    removed.push({ kind: 'link', host });
    return `${label} [link removed: ${defang(host)}]`;
  });
  out = out.replace(REFERENCE, (whole: string, _label: string, destination: string) => {
    const host = refused(destination, true);
    if (host === undefined) return whole;
    removed.push({ kind: 'reference', host });
    return `[link reference removed: ${defang(host)}]`;
  });
  out = out.replace(AUTOLINK, (whole: string, destination: string) => {
    const host = refused(destination, false);
    if (host === undefined) return whole;
    removed.push({ kind: 'autolink', host });
    return `[link removed: ${defang(host)}]`;
  });
  return { text: out, removed };
}

type Target =
  | { readonly kind: 'relative' }
  | { readonly kind: 'data'; readonly raw: string }
  | { readonly kind: 'other'; readonly scheme: string }
  | { readonly kind: 'web'; readonly url: URL; readonly host: string };

/** A destination as a browser would read it: angle brackets, backslash escapes and character references undone. */
function resolve(raw: string): Target {
  let text = raw.trim();
  if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1).trim();
  text = text
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
    .replace(/&#x([0-9a-f]{1,6});?/gi, (_whole, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d{1,7});?/g, (_whole, digits: string) => String.fromCodePoint(Number(digits)))
    .replace(/&([a-z]+);/gi, (whole, name: string) => ENTITIES[name.toLowerCase()] ?? whole)
    .replace(/[\s\u0000-\u001f\u200B-\u200F\u2060-\u2064\uFEFF]+/g, '');
  if (text.startsWith('//') || text.startsWith('\\\\')) text = `https:${text.replace(/\\/g, '/')}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (!scheme) return { kind: 'relative' };
  if (scheme === 'data') return { kind: 'data', raw: text };
  if (scheme === 'mailto') {
    const domain = /@([^?&#\s]+)/.exec(text)?.[1];
    return parseWeb(`https://${domain ?? 'invalid.'}`, 'mailto');
  }
  if (scheme !== 'http' && scheme !== 'https') return { kind: 'other', scheme };
  return parseWeb(text, scheme);
}

function parseWeb(text: string, scheme: string): Target {
  try {
    const url = new URL(text);
    return { kind: 'web', url, host: url.host };
  } catch {
    return { kind: 'other', scheme };
  }
}

/** `evil.example` → `evil[.]example`: readable, not a link. */
function defang(host: string): string {
  return host.replace(/\./g, '[.]');
}
