import type { Embedder } from '../../src/runtime/memory/memory';

/**
 * A deterministic embedder for tests: each word (lower case, plural `s` dropped) adds 1 to one of
 * `dimensions` slots chosen by a hash of the word, and words listed as synonyms share a slot. So
 * texts that share words, or synonyms, point the same way; nothing is random or remote.
 */
export function fakeEmbedder(synonyms: readonly (readonly string[])[] = [], dimensions = 64): Embedder & { readonly calls: string[][] } {
  const canonical = new Map<string, string>();
  for (const group of synonyms) for (const word of group) canonical.set(word, group[0] ?? word);
  const calls: string[][] = [];
  const slot = (word: string): number => {
    let hash = 2166136261;
    for (const char of word) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
    return hash % dimensions;
  };
  return {
    name: `test:fake-${dimensions}`,
    calls,
    embed(texts) {
      calls.push([...texts]);
      return Promise.resolve(
        texts.map((text) => {
          const vector = new Array<number>(dimensions).fill(0);
          for (const raw of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
            const word = raw.length > 3 && raw.endsWith('s') ? raw.slice(0, -1) : raw;
            const index = slot(canonical.get(word) ?? word);
            vector[index] = (vector[index] ?? 0) + 1;
          }
          return vector;
        }),
      );
    },
  };
}
