import { KeelError } from '../errors';
import type { CheckpointStore } from '../store/checkpointStore';
import { loadTraceSource, type TraceSource } from '../trace/buildTrace';

/** A run as its database recorded it, with the sub-agent runs it started: what a replay plays back. */
export interface Recording extends TraceSource {
  /** The sub-agent runs each tool step started, by that step's seq, in the order they were started. */
  readonly children: ReadonlyMap<number, readonly Recording[]>;
}

/** Reads a run, its journal, approvals and effects, and those of its sub-agent runs, from the store. */
export async function loadRecording(store: CheckpointStore, runId: string): Promise<Recording> {
  const source = await loadTraceSource(store, runId).catch((error: unknown) => {
    throw error instanceof KeelError ? error : new KeelError(`Could not read run ${runId} from ${store.location}.`, { cause: error });
  });
  const children = new Map<number, Recording[]>();
  for (const child of await store.childRuns(runId)) {
    if (child.parentSeq === null) continue;
    const recordings = children.get(child.parentSeq) ?? [];
    recordings.push(await loadRecording(store, child.id));
    children.set(child.parentSeq, recordings);
  }
  return { ...source, children };
}
