import assert from 'node:assert/strict';
import { ConversationHash } from '../../src/runtime/hash/conversationHash';
import { canonicalJson, messageJson, sha256 } from '../../src/runtime/hash/canonicalJson';
import type { Message } from '../../src/runtime/model/model';

/** canonicalJson as it was first written: every journal's hashes were computed with it. */
function reference(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/** A small deterministic generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const KEYS = ['a', 'b', 'B', '_', 'é', 'z', 'role', 'content', 'toolCalls', '10', '9', '1a', '', ' ', '\u2028', 'ä', 'Z'];
const STRINGS = ['', 'x', 'line\nbreak', 'quote"', 'tab\t', '\u0000', 'emoji 😀', '\ud800', '</script>', 'é'];

function value(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 6 : 10));
  switch (pick) {
    case 0:
      return STRINGS[Math.floor(next() * STRINGS.length)];
    case 1:
      return [0, -0, 1.5, -7, 1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53][Math.floor(next() * 9)];
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return [() => 1, Symbol('s'), new Date(0), { toJSON: () => 'json' }][Math.floor(next() * 4)];
    case 6:
    case 7:
      return Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
    default: {
      const object: Record<string, unknown> = next() < 0.1 ? (Object.create(null) as Record<string, unknown>) : {};
      for (let i = Math.floor(next() * 5); i > 0; i--) object[KEYS[Math.floor(next() * KEYS.length)] ?? 'k'] = value(next, depth + 1);
      return object;
    }
  }
}

describe('canonicalJson', () => {
  it('writes exactly what it always wrote, for any JSON-ish value', () => {
    const next = random(20_261_126);
    for (let i = 0; i < 20_000; i++) {
      const sample = value(next, 0);
      assert.equal(canonicalJson(sample), reference(sample), `sample ${i}: ${String(reference(sample))}`);
    }
  });

  it('writes messages and tool calls with sorted keys', () => {
    const message = { role: 'assistant', toolCalls: [{ name: 'pay', id: 'call_1', arguments: '{"b":1,"a":2}' }], content: null };
    assert.equal(canonicalJson(message), '{"content":null,"role":"assistant","toolCalls":[{"arguments":"{\\"b\\":1,\\"a\\":2}","id":"call_1","name":"pay"}]}');
    assert.equal(canonicalJson({ b: { d: 1, c: [{ f: 1, e: 2 }] }, a: undefined }), '{"b":{"c":[{"e":2,"f":1}],"d":1}}');
  });

  it('writes every message the loop builds as canonicalJson does, directly, and leaves any other shape to it', () => {
    const next = random(20_261_127);
    const text = (): string => {
      const pick = STRINGS[Math.floor(next() * STRINGS.length)] ?? '';
      return next() < 0.2 ? pick.repeat(20) : pick;
    };
    const message = (): Record<string, unknown> => {
      switch (Math.floor(next() * 4)) {
        case 0:
          return { role: 'system', content: text() };
        case 1:
          return { content: text(), role: 'user' };
        case 2:
          return { role: 'tool', toolCallId: text(), name: text(), content: text(), isError: next() < 0.5 };
        default:
          return {
            role: 'assistant',
            content: next() < 0.3 ? null : text(),
            toolCalls: Array.from({ length: Math.floor(next() * 3) }, () => ({ name: text(), id: text(), arguments: `{"n":${Math.floor(next() * 100)},"s":${JSON.stringify(text())}}` })),
          };
      }
    };
    // Shapes the fast path must not claim: a key more or less, a value of another type, another prototype.
    const perturb = (original: Record<string, unknown>): Record<string, unknown> => {
      const changed: Record<string, unknown> = { ...original };
      switch (Math.floor(next() * 6)) {
        case 0:
          changed[KEYS[Math.floor(next() * KEYS.length)] ?? 'k'] = value(next, 2);
          return changed;
        case 1:
          delete changed[Object.keys(changed).filter((key) => key !== 'role')[0] ?? 'content'];
          return changed;
        case 2:
          changed['content'] = value(next, 2);
          return changed;
        case 3:
          return Object.assign(Object.create(null) as Record<string, unknown>, changed);
        case 4:
          changed['toolCalls'] = [{ id: 'a', name: 'b', arguments: 'c', extra: value(next, 2) }, null];
          return changed;
        default:
          Object.defineProperty(changed, 'content', { value: text(), enumerable: false });
          return changed;
      }
    };
    for (let i = 0; i < 20_000; i++) {
      const built = message();
      const direct = messageJson(built as unknown as Message);
      assert.equal(direct, reference(built), `message ${i}: ${reference(built)}`);
      const odd = perturb(built);
      const written = messageJson(odd as unknown as Message) ?? canonicalJson(odd);
      assert.equal(written, reference(odd), `changed message ${i}: ${reference(odd)}`);
    }
  });

  it('chains the conversation hash as recorded journals expect: SHA-256 of the previous hash and each message', () => {
    const tools = [{ name: 'pay', description: 'Pays.', parameters: { type: 'object' } }];
    const messages = [
      { role: 'system', content: 'Pay. 😀' },
      { role: 'user', content: 'go' },
      { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', name: 'pay', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'call_1', name: 'pay', content: 'paid', isError: false },
    ] as const;
    const hash = new ConversationHash(tools);
    let expected = sha256(reference(tools));
    assert.equal(hash.value, expected);
    for (const message of messages) {
      hash.append(message);
      expected = sha256(expected + reference(message));
      assert.equal(hash.value, expected);
    }
  });
});
