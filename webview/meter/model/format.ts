/** How the budget meter (and the status bar) write money, tokens, durations and shares. No DOM here. */

/** Dollars with the digits that matter: `$0`, `$0.000045`, `$0.0123`, `$0.05`, `$0.50`, `$1,234.56`. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return '—';
  if (usd < 0) return `-${formatUsd(-usd)}`;
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  if (usd < 0.001) return `$${Number(usd.toPrecision(2)).toString()}`;
  return `$${usd.toFixed(4).replace(/0{1,2}$/, '')}`;
}

/** Tokens in a few characters: `950`, `2.1k`, `21k`, `1.2M`. */
export function formatTokens(tokens: number): string {
  const value = Math.round(tokens);
  if (value < 1000) return String(value);
  if (value < 10_000) return `${trimZero((value / 1000).toFixed(1))}k`;
  if (value < 999_500) return `${Math.round(value / 1000)}k`;
  if (value < 10_000_000) return `${trimZero((value / 1_000_000).toFixed(1))}M`;
  return `${Math.round(value / 1_000_000)}M`;
}

/** A count of tokens in full, for tooltips: `12,345 tokens`. */
export function formatTokensExact(tokens: number): string {
  const value = Math.round(tokens);
  return `${value.toLocaleString('en-US')} token${value === 1 ? '' : 's'}`;
}

/** Active time: `450 ms`, `12.3 s`, `2 min 5 s`, `2 min`, `1 h 4 min`. */
export function formatDuration(ms: number): string {
  const value = Math.max(0, ms);
  if (Math.round(value) < 1000) return `${Math.round(value)} ms`;
  if (Math.round(value / 100) < 600) return `${(value / 1000).toFixed(1)} s`;
  const seconds = Math.round(value / 1000);
  if (seconds < 3600) return seconds % 60 === 0 ? `${seconds / 60} min` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(seconds / 60);
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A share as a whole percentage, `<1%` for a small one that is not nothing. */
export function formatShare(fraction: number): string {
  if (!Number.isFinite(fraction)) return '—';
  if (fraction > 0 && fraction < 0.005) return '<1%';
  return `${Math.round(fraction * 100)}%`;
}

/** The end of a run id, as the editor shows it in titles: `run_01m8…0ekv` → `0ekv` (last six). */
export function shortId(id: string): string {
  return id.slice(-6);
}

function trimZero(text: string): string {
  return text.endsWith('.0') ? text.slice(0, -2) : text;
}
