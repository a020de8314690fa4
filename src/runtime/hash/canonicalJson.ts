import { hash } from 'node:crypto';
import type { Message } from '../model/model';

/** JSON with object keys sorted, so equal values always hash alike. */
export function canonicalJson(value: unknown): string {
  return plainJson(value) ?? sortedJson(value);
}

/** The definition of canonicalJson: JSON.stringify, every object's entries sorted by key. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/**
 * sortedJson's text, written directly (several times faster: journal checks and conversation
 * hashes run it on every step), for plain JSON data only: plain objects without keys that read as
 * array indices (JSON puts those first), arrays without holes or undefined, strings, finite or
 * not numbers, booleans and null. Undefined for anything else, which sortedJson then writes.
 */
function plainJson(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quoted(value);
    case 'number':
      // What JSON.stringify writes for a number.
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let text = '[';
        for (let index = 0; index < value.length; index++) {
          const item = plainJson(value[index]);
          if (item === undefined) return undefined;
          text += index === 0 ? item : `,${item}`;
        }
        return `${text}]`;
      }
      const prototype: unknown = Object.getPrototypeOf(value);
      if ((prototype !== Object.prototype && prototype !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
      const keys = sortedKeys(value);
      let text = '{';
      for (const key of keys) {
        const first = key.charCodeAt(0);
        if (first >= 48 && first <= 57) return undefined;
        const item: unknown = (value as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        const written = plainJson(item);
        if (written === undefined) return undefined;
        text += `${text.length === 1 ? '' : ','}${quotedKey(key)}:${written}`;
      }
      return `${text}}`;
    }
    default:
      return undefined;
  }
}

/**
 * An object's keys in code-unit order, as Array.prototype.sort orders strings: sorted by insertion,
 * which for the few keys of a message is several times faster than sort().
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  for (let index = 1; index < keys.length; index++) {
    const key = keys[index]!;
    let at = index;
    while (at > 0 && keys[at - 1]! > key) {
      keys[at] = keys[at - 1]!;
      at--;
    }
    keys[at] = key;
  }
  return keys;
}

/** Up to this length, quoted scans a string itself. */
const SHORT_STRING = 64;

/**
 * Keys as quoted(key) writes them, kept for the few keys that messages and tool specs use on every
 * step: a pure function's results, so nothing here can go stale. Bounded: at most KEPT_KEYS keys,
 * each a short string.
 */
const quotedKeys = new Map<string, string>();
const KEPT_KEYS = 1000;

function quotedKey(key: string): string {
  let text = quotedKeys.get(key);
  if (text === undefined) {
    text = quoted(key);
    if (quotedKeys.size < KEPT_KEYS && key.length <= SHORT_STRING) quotedKeys.set(key, text);
  }
  return text;
}

/**
 * JSON.stringify's text of a string. Short strings with nothing to escape (keys, names, ids) are
 * quoted directly, faster than a call to JSON.stringify; anything else (control characters,
 * quotes, backslashes, surrogates, long text) is left to JSON.stringify.
 */
function quoted(text: string): string {
  if (text.length > SHORT_STRING) return JSON.stringify(text);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return JSON.stringify(text);
  }
  return `"${text}"`;
}

const PLAIN_MESSAGE_KEYS = new Set(['role', 'content']);
const TOOL_MESSAGE_KEYS = new Set(['role', 'toolCallId', 'name', 'content', 'isError']);
const ASSISTANT_MESSAGE_KEYS = new Set(['role', 'content', 'toolCalls']);
const TOOL_CALL_KEYS = new Set(['id', 'name', 'arguments']);

/** Whether `value` is a plain object whose own enumerable keys are exactly `keys`. */
function plainWithKeys(value: object, keys: ReadonlySet<string>): boolean {
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  const own = Object.keys(value);
  return own.length === keys.size && own.every((key) => keys.has(key));
}

/**
 * canonicalJson's text of a message of exactly the shape the loop builds (a plain object with its
 * role's keys and no others, each of its type), written straight out in sorted key order: the
 * conversation hash takes every message of every run, and this skips the general walk. Undefined
 * for anything else, which canonicalJson then writes.
 */
export function messageJson(message: Message): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  switch (message.role) {
    case 'system':
    case 'user':
      return typeof message.content === 'string' && plainWithKeys(message, PLAIN_MESSAGE_KEYS)
        ? `{"content":${quoted(message.content)},"role":"${message.role}"}`
        : undefined;
    case 'tool':
      return typeof message.content === 'string' &&
        typeof message.isError === 'boolean' &&
        typeof message.name === 'string' &&
        typeof message.toolCallId === 'string' &&
        plainWithKeys(message, TOOL_MESSAGE_KEYS)
        ? `{"content":${quoted(message.content)},"isError":${message.isError ? 'true' : 'false'},"name":${quoted(message.name)},"role":"tool","toolCallId":${quoted(message.toolCallId)}}`
        : undefined;
    case 'assistant': {
      const { content, toolCalls } = message;
      if ((content !== null && typeof content !== 'string') || !Array.isArray(toolCalls) || !plainWithKeys(message, ASSISTANT_MESSAGE_KEYS)) return undefined;
      let calls = '';
      for (let index = 0; index < toolCalls.length; index++) {
        const call = toolCalls[index];
        if (typeof call !== 'object' || call === null || typeof call.arguments !== 'string' || typeof call.id !== 'string' || typeof call.name !== 'string' || !plainWithKeys(call, TOOL_CALL_KEYS)) {
          return undefined;
        }
        calls += `${index === 0 ? '' : ','}{"arguments":${quoted(call.arguments)},"id":${quoted(call.id)},"name":${quoted(call.name)}}`;
      }
      return `{"content":${content === null ? 'null' : quoted(content)},"role":"assistant","toolCalls":[${calls}]}`;
    }
    default:
      return undefined;
  }
}

export function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}
