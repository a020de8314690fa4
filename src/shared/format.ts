/**
 * How Keel writes durations, tokens, money and text for a person: one rule for the CLI, the
 * runtime's messages, the editor and its webviews. No imports, so every one of them can use it.
 */

/**
 * `450 ms`, `12.3 s`, `2 min 5 s`, `2 min`, `1 h 4 min`. Each range is chosen by the value as it
 * will be shown, so rounding never gives `1000 ms`, `60.0 s` or `1 min 60 s`; below zero is `0 ms`.
 */
export function formatDuration(ms: number): string {
  const value = Math.max(0, ms);
  if (Math.round(value) < 1000) return `${Math.round(value)} ms`;
  if (Math.round(value / 100) < 600) return `${(value / 1000).toFixed(1)} s`;
  const seconds = Math.round(value / 1000);
  if (seconds < 3600) return seconds % 60 === 0 ? `${seconds / 60} min` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(seconds / 60);
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** How long ago something happened, coarsely: `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function formatAgo(ms: number): string {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

const TOKEN_UNITS: readonly (readonly [string, number])[] = [
  ['k', 1e3],
  ['M', 1e6],
  ['B', 1e9],
];

/**
 * Tokens in a few characters: exact below a thousand, then one decimal below 100 of a unit and
 * whole units above: `950`, `2.1k`, `12.3k`, `123k`, `1M`, `4.5M`.
 */
export function formatTokens(tokens: number): string {
  const value = Math.max(0, Math.round(tokens));
  if (value < 1000) return String(value);
  for (const [unit, size] of TOKEN_UNITS) {
    const tenths = Math.round((value / size) * 10);
    if (tenths < 1000) return `${trimZero((tenths / 10).toFixed(1))}${unit}`;
    const whole = Math.round(value / size);
    if (whole < 1000) return `${whole}${unit}`;
  }
  return `${Math.round(value / 1e9).toLocaleString('en-US')}B`;
}

/** A count of tokens in full, for tooltips and details: `12,345 tokens`. */
export function formatTokensExact(tokens: number): string {
  const value = Math.round(tokens);
  return `${value.toLocaleString('en-US')} token${value === 1 ? '' : 's'}`;
}

/** Dollars with the digits that matter: `$0`, `$0.000045`, `$0.0123`, `$0.05`, `$0.50`, `$1,234.56`. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return '—';
  if (usd < 0) return `-${formatUsd(-usd)}`;
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  if (usd < 0.001) return `$${Number(usd.toPrecision(2)).toString()}`;
  return `$${usd.toFixed(4).replace(/0{1,2}$/, '')}`;
}

/** A share as a whole percentage, `<1%` for a small one that is not nothing. */
export function formatShare(fraction: number): string {
  if (!Number.isFinite(fraction)) return '—';
  if (fraction > 0 && fraction < 0.005) return '<1%';
  return `${Math.round(fraction * 100)}%`;
}

/** The end of a run id, as titles show it: `run_01m8…0ekv` → its last six characters. */
export function shortId(id: string): string {
  return id.slice(-6);
}

/** Text on one line, cut to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `flightId: "UA66", price: 598`: arguments in one line, for a person. */
export function compactArgs(args: unknown): string {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return JSON.stringify(args) ?? '';
  return Object.entries(args)
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}`)
    .join(', ');
}

/** A size for people: 512 bytes, 3.4 KB, 187.2 MB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 20) return `${Number((bytes / 2 ** 20).toFixed(1))} MB`;
  if (bytes >= 2 ** 10) return `${Number((bytes / 2 ** 10).toFixed(1))} KB`;
  return `${bytes} bytes`;
}

function trimZero(text: string): string {
  return text.endsWith('.0') ? text.slice(0, -2) : text;
}
