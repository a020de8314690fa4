import { z } from 'zod';
import { leastTrusted, type ContentChannel } from './channel';
import type { ProgressRecord, ProgressUpdate } from './memory';
import type { MemoryItem } from './memoryStore';

/** Progress notes: their shape, how an update applies, and how they read for a model and a person. */

export const EMPTY_PROGRESS: ProgressRecord = { done: [], inProgress: [], next: [], openQuestions: [] };

const items = z.array(z.string());
export const progressUpdateSchema = z
  .object({
    done: items.optional().describe('Everything finished so far (replaces the list kept).'),
    inProgress: items.optional().describe('What is under way and not finished.'),
    next: items.optional().describe('What to do next, in order.'),
    openQuestions: items.optional().describe('Questions still open, for a person or a later run.'),
  })
  .strict();

const FIELDS = ['done', 'inProgress', 'next', 'openQuestions'] as const;

/** Progress notes as stored, read leniently: a list that is missing or malformed reads as empty. */
export function progressOf(value: unknown): ProgressRecord {
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const list = (field: string): string[] => {
    const entry = record[field];
    return Array.isArray(entry) ? entry.filter((item): item is string => typeof item === 'string') : [];
  };
  return { done: list('done'), inProgress: list('inProgress'), next: list('next'), openQuestions: list('openQuestions') };
}

/**
 * The notes after an update, and their channel: an update that replaces every list is as trusted
 * as itself; one that keeps some of the old lists, no more trusted than those.
 */
export function applyProgress(
  current: MemoryItem | undefined,
  change: ProgressUpdate,
  channel: ContentChannel,
): { record: ProgressRecord; channel: ContentChannel } {
  const before = current ? progressOf(current.value) : EMPTY_PROGRESS;
  const record: ProgressRecord = {
    done: [...(change.done ?? before.done)],
    inProgress: [...(change.inProgress ?? before.inProgress)],
    next: [...(change.next ?? before.next)],
    openQuestions: [...(change.openQuestions ?? before.openQuestions)],
  };
  const keepsOld = current !== undefined && FIELDS.some((field) => change[field] === undefined);
  return { record, channel: keepsOld ? leastTrusted(channel, current.channel) : channel };
}

/** The notes as a few lines for a person or a model. */
export function progressText(record: ProgressRecord): string {
  const section = (title: string, entries: readonly string[]) => [`${title}:`, ...(entries.length > 0 ? entries.map((entry) => `- ${entry}`) : ['- (none)'])];
  return [
    ...section('Done', record.done),
    ...section('In progress', record.inProgress),
    ...section('Next', record.next),
    ...section('Open questions', record.openQuestions),
  ].join('\n');
}

/** A one-line account of the notes: `2 done, 1 in progress, 3 next, 0 open questions`. */
export function progressCounts(record: ProgressRecord): string {
  return `${record.done.length} done, ${record.inProgress.length} in progress, ${record.next.length} next, ${record.openQuestions.length} open question${record.openQuestions.length === 1 ? '' : 's'}`;
}
