import { element } from './dom';

/** Text longer than this many lines shows its first ones, with a button for the rest. */
const CLAMP_LINES = 12;

/**
 * A text as a `pre`, cut to its first lines when long, with a button that shows all of it (then
 * less again). `expanded` holds the keys of the texts shown whole, so a redraw keeps them whole.
 */
export function clampedText(key: string, text: string, expanded: Set<string>, redraw: () => void): HTMLElement[] {
  const lines = text.split('\n');
  const long = lines.length > CLAMP_LINES;
  const whole = !long || expanded.has(key);
  const parts: HTMLElement[] = [element('pre', undefined, whole ? text : lines.slice(0, CLAMP_LINES).join('\n'))];
  if (long) {
    const more = element('button', 'more-lines', whole ? 'Show less' : `Show all ${lines.length} lines`);
    more.addEventListener('click', () => {
      if (whole) expanded.delete(key);
      else expanded.add(key);
      redraw();
    });
    parts.push(more);
  }
  return parts;
}
