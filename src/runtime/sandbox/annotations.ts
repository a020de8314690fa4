/**
 * Span attributes a sandboxed tool sends with `ctx.annotate`, kept within bounds before they reach
 * the host's context: they are data from untrusted code. Every tier counts its call's attributes
 * with one of these.
 */

const MAX_ANNOTATIONS = 64;
const MAX_ANNOTATION_KEY_CHARS = 200;
const MAX_ANNOTATION_VALUE_CHARS = 1_000;

export class AnnotationBounds {
  private count = 0;

  /** The strings, numbers and booleans of `attributes`, values cut, up to the call's limit of attributes. */
  keep(attributes: unknown): Record<string, string | number | boolean> {
    const kept: Record<string, string | number | boolean> = {};
    if (typeof attributes !== 'object' || attributes === null) return kept;
    for (const [key, value] of Object.entries(attributes)) {
      if (this.count >= MAX_ANNOTATIONS || key.length > MAX_ANNOTATION_KEY_CHARS) break;
      if (typeof value === 'number' || typeof value === 'boolean') kept[key] = value;
      else if (typeof value === 'string') kept[key] = value.slice(0, MAX_ANNOTATION_VALUE_CHARS);
      else continue;
      this.count += 1;
    }
    return kept;
  }
}
