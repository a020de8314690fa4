import type { ContentChannel } from '../guard/config';
import { fence as guardFence, fenceId } from '../guard/fence';

export type { ContentChannel };

export const CONTENT_CHANNELS: readonly ContentChannel[] = ['user', 'document', 'tool_output'];

/** Documents (pages, emails, files) are the least trusted: anyone can write them. */
const RANK: Readonly<Record<ContentChannel, number>> = { user: 0, tool_output: 1, document: 2 };

export function isContentChannel(value: unknown): value is ContentChannel {
  return typeof value === 'string' && (CONTENT_CHANNELS as readonly string[]).includes(value);
}

export function isTrusted(channel: ContentChannel): boolean {
  return channel === 'user';
}

/** The less trusted of the channels: content mixed from several sources is as trusted as its least trusted part. */
export function leastTrusted(...channels: readonly ContentChannel[]): ContentChannel {
  let least: ContentChannel = 'user';
  for (const channel of channels) if (RANK[channel] > RANK[least]) least = channel;
  return least;
}

/**
 * Untrusted content that Keel itself puts before a model (a thread summary, progress notes): in the
 * same labelled fence as tool results (see guard/fence.ts), which says it is data; markers inside
 * it are defused. `source` says what it is, e.g. "thread t1 summary".
 */
export function fence(channel: ContentChannel, source: string, text: string): string {
  if (channel === 'user') return text;
  const label = source.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64) || 'keel';
  return guardFence(text, { id: fenceId(source, 0), channel, tool: label, what: `the ${source}, which Keel keeps and which was written after untrusted content`, warnings: [] });
}
