import type { TraceSpan } from '../../../src/protocol/trace';

/** The waterfall's time axis: where a moment falls across the track, and where the ticks go. */

export interface TimeScale {
  /** Milliseconds since the epoch at the left edge. */
  readonly start: number;
  /** At the right edge; always after `start`. */
  readonly end: number;
}

/** Where a bar sits in its track, in percent of the track's width. */
export interface Bar {
  readonly left: number;
  readonly width: number;
}

export interface Tick {
  /** Milliseconds since the scale's start. */
  readonly offset: number;
  /** Percent of the track's width. */
  readonly position: number;
  readonly label: string;
}

/** A span still open ends `now`; a trace with no length gets one millisecond, so bars have room. */
export function traceScale(spans: Iterable<TraceSpan>, now: number): TimeScale {
  let start = Infinity;
  let end = -Infinity;
  for (const span of spans) {
    start = Math.min(start, span.startTime);
    end = Math.max(end, span.endTime ?? Math.max(now, span.startTime));
  }
  if (start === Infinity) return { start: now, end: now + 1 };
  return { start, end: Math.max(end, start + 1) };
}

/** Percent of the track at `time`, clamped to the track. */
export function position(scale: TimeScale, time: number): number {
  const fraction = (time - scale.start) / (scale.end - scale.start);
  return Math.min(100, Math.max(0, fraction * 100));
}

/** A bar never gets narrower than `minWidth` percent (a 0 ms span still shows) nor leaves the track. */
export function barOf(span: TraceSpan, scale: TimeScale, now: number, minWidth = 0.25): Bar {
  const left = position(scale, span.startTime);
  const right = position(scale, span.endTime ?? Math.max(now, span.startTime));
  const width = Math.max(right - left, minWidth);
  return { left: Math.min(left, 100 - width), width };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Steps a clock reads well: 1, 2, 5 ms up to 500 ms, then 1, 2, 5, 10, 15, 30 s and min, then hours. */
const STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY,
];

/** The step between ticks: the smallest that reads well and gives at most `maxTicks` steps over `range` ms. */
export function tickStep(range: number, maxTicks: number): number {
  const raw = Math.max(range, 1) / Math.max(maxTicks, 1);
  const step = STEPS.find((candidate) => candidate >= raw);
  if (step !== undefined) return step;
  const days = raw / DAY;
  const power = 10 ** Math.floor(Math.log10(days));
  const multiple = [1, 2, 5, 10].find((candidate) => candidate * power >= days) ?? 10;
  return multiple * power * DAY;
}

/** Ticks from the start of the scale, every `tickStep`, labelled as offsets (`0`, `250 ms`, `1.5 s`). */
export function ticks(scale: TimeScale, maxTicks: number): Tick[] {
  const range = scale.end - scale.start;
  const step = tickStep(range, maxTicks);
  const result: Tick[] = [];
  for (let offset = 0; offset <= range; offset += step) {
    result.push({ offset, position: (offset / range) * 100, label: formatOffset(offset, step) });
  }
  return result;
}

/** The room a tick's label takes on the axis, in pixels: `2 min 30 s` with its padding, at the editor's font size. */
export const TICK_LABEL_PX = 80;

/**
 * The axis's ticks for a track `width` pixels wide: no more than fit a label each, so labels never
 * crowd, and a label only where it fits before the right edge (its line still shows), so none is cut.
 */
export function axisTicks(scale: TimeScale, width: number, labelPx = TICK_LABEL_PX): Tick[] {
  return ticks(scale, Math.floor(width / labelPx)).map((tick) => ((tick.position / 100) * width + labelPx > width ? { ...tick, label: '' } : tick));
}

/** A tick label, as precise as the step between ticks needs: `0`, `250 ms`, `1.5 s`, `2 min 30 s`. */
export function formatOffset(ms: number, step: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000 || step < 1000) {
    const digits = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
    return `${(ms / 1000).toFixed(digits)} s`;
  }
  const total = Math.round(ms / 1000);
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}
