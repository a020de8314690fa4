/** The arithmetic of memory search: keyword tokens and scores, vectors and their similarity. */

/** The distinct words of a query, lower-cased: letters, digits and `_` in any script. */
export function queryTokens(query: string): string[] {
  return [...new Set(query.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [])];
}

/** An FTS5 query matching any of the words (each as a prefix), every word quoted so nothing in it is syntax. */
export function ftsQuery(tokens: readonly string[]): string {
  return tokens.map((token) => `"${token.replace(/"/g, '""')}"*`).join(' OR ');
}

/**
 * A keyword score for stores without full-text search: for each query word, how often it starts a
 * word of the key (counted twice) or the text, dampened (1 + ln n); 0 when no word occurs.
 */
export function keywordScore(tokens: readonly string[], key: string, text: string): number {
  const keyWords = key.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  const textWords = text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  let score = 0;
  for (const token of tokens) {
    const count = 2 * keyWords.filter((word) => word.startsWith(token)).length + textWords.filter((word) => word.startsWith(token)).length;
    if (count > 0) score += 1 + Math.log(count);
  }
  return score;
}

/** Cosine similarity of two vectors of the same length; 0 when either is all zeros or the lengths differ. */
export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) return 0;
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

/** A vector as stored: little-endian 32-bit floats. */
export function encodeVector(vector: readonly number[]): Buffer {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((value, index) => buffer.writeFloatLE(value, index * 4));
  return buffer;
}

export function decodeVector(bytes: Uint8Array): number[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vector: number[] = [];
  for (let offset = 0; offset + 4 <= buffer.length; offset += 4) vector.push(buffer.readFloatLE(offset));
  return vector;
}
