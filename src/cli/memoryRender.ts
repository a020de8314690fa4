import { formatDuration, truncate } from '../shared/format';
import type { MemoryItem, MemoryOpRecord, NamespaceSummary } from '../runtime/memory/memoryStore';
import { progressOf, progressText } from '../runtime/memory/progress';
import type { RunRecord } from '../runtime/store/checkpointStore';
import type { ThreadRecord } from '../runtime/threads/threadStore';
import { stateMark } from './render';
import type { Style } from './style';

/** Text views of threads, memory and progress notes for the terminal; pure functions of their inputs. */

export function threadsTable(threads: readonly ThreadRecord[], style: Style, now: number = Date.now()): string {
  if (threads.length === 0) return 'No threads yet. Start one with: keel run <file.agent.ts> --thread <id> --input "..."';
  return threads
    .map((thread) => `${style.bold(thread.id)}  ${thread.agent} · ${thread.runCount} run${thread.runCount === 1 ? '' : 's'} · ${style.dim(`${formatDuration(Math.max(0, now - thread.updatedAt))} ago`)}  ${truncate(thread.title, 60)}`)
    .join('\n');
}

/** A thread's history: its summary, then each run's input and answer. */
export function threadDetail(thread: ThreadRecord, runs: readonly RunRecord[], style: Style): string {
  const lines = [`${style.bold(`thread ${thread.id}`)} · ${thread.agent} · ${thread.runCount} run${thread.runCount === 1 ? '' : 's'} · started ${new Date(thread.createdAt).toISOString()}`];
  if (thread.summary) {
    lines.push(
      '',
      style.dim(`summary of the first ${thread.summary.coveredRuns} run${thread.summary.coveredRuns === 1 ? '' : 's'} (through ${thread.summary.throughRunId}, ${thread.summary.channel}):`),
      ...thread.summary.text.split('\n').map((line) => `  ${line}`),
    );
  }
  for (const run of runs) {
    lines.push('', `${stateMark(run.state, style)} ${style.dim(run.id)}`, `  ${style.cyan('you')}  ${run.input}`);
    if (run.state === 'completed') lines.push(`  ${style.green(run.agent)}  ${run.result ?? ''}`);
    else lines.push(`  ${style.dim(`(${run.state}${run.error ? `: ${truncate(run.error, 80)}` : ''})`)}`);
  }
  return lines.join('\n');
}

export function namespacesTable(namespaces: readonly NamespaceSummary[], style: Style): string {
  if (namespaces.length === 0) return 'Memory is empty.';
  return namespaces.map((entry) => `${style.bold(entry.namespace)}  ${entry.count} value${entry.count === 1 ? '' : 's'}`).join('\n');
}

/** A value in one line: key, channel, revision, and the value shortened. */
export function itemLine(item: MemoryItem, style: Style): string {
  const value = typeof item.value === 'string' ? item.value : JSON.stringify(item.value);
  const channel = item.channel === 'user' ? style.green(item.channel) : style.yellow(item.channel);
  return `${style.bold(item.key)}  ${channel} · r${item.revision} · ${style.dim(item.writtenBy)}  ${truncate(value ?? '', 80)}`;
}

export function itemDetail(item: MemoryItem, style: Style): string {
  return [
    `${style.bold(`${item.namespace}/${item.key}`)} · ${item.channel} · revision ${item.revision} · format ${item.schema}`,
    style.dim(`written by ${item.writtenBy} at ${new Date(item.updatedAt).toISOString()}`),
    typeof item.value === 'string' ? item.value : JSON.stringify(item.value, null, 2),
  ].join('\n');
}

/** What a run did to memory, one line per operation: `  2.0 get project/fact → found (user)`. */
export function memoryOpLines(ops: readonly MemoryOpRecord[], style: Style): string[] {
  return ops.map((op) => {
    const where = op.op === 'thread.load' ? `thread ${String((op.request as { threadId?: unknown } | null)?.threadId ?? '')}` : [op.namespace, op.key].filter((part) => part !== null).join('/');
    return `  ${style.dim(`${op.seq}.${op.opIndex}`)} ${op.op} ${where} → ${opOutcome(op)}`;
  });
}

function opOutcome(op: MemoryOpRecord): string {
  const result = op.result as Record<string, unknown> | unknown[] | null;
  switch (op.op) {
    case 'get':
    case 'progress.get':
      return result === null ? 'nothing' : `found (${String((result as Record<string, unknown>)['channel'])})`;
    case 'search':
    case 'list':
      return `${Array.isArray(result) ? result.length : 0} value(s)`;
    case 'delete':
      return (result as Record<string, unknown> | null)?.['deleted'] === true ? 'deleted' : 'nothing to delete';
    case 'thread.load': {
      const runs = (result as Record<string, unknown> | null)?.['runs'];
      return `${Array.isArray(runs) ? runs.length : 0} earlier run(s)${(result as Record<string, unknown> | null)?.['summary'] ? ' and a summary' : ''}`;
    }
    case 'put':
    case 'progress.update': {
      const item = result as Record<string, unknown> | null;
      return `revision ${String(item?.['revision'])} (${String(item?.['channel'])})`;
    }
  }
}

/** A task's progress notes as they stand. */
export function progressDetail(taskId: string, item: MemoryItem | undefined, style: Style): string {
  if (!item) return `${style.bold(`Progress of task ${taskId}`)}\n  (no notes yet)`;
  return [
    `${style.bold(`Progress of task ${taskId}`)} ${style.dim(`(${item.channel}, written by ${item.writtenBy} at ${new Date(item.updatedAt).toISOString()})`)}`,
    ...progressText(progressOf(item.value))
      .split('\n')
      .map((line) => `  ${line}`),
  ].join('\n');
}
