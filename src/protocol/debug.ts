/**
 * What the replay debugger's adapter and the editor agree on beyond the Debug Adapter Protocol:
 * transcript documents, where the adapter's stack frames point, and its `keel/*` requests.
 */

/** The scheme of transcript documents: `keel-transcript:/<runId>.keel-transcript`. */
export const TRANSCRIPT_SCHEME = 'keel-transcript';
const SUFFIX = '.keel-transcript';

/** The URI of a run's transcript document, as a string (what the adapter puts in a source path). */
export function transcriptUri(runId: string): string {
  return `${TRANSCRIPT_SCHEME}:/${runId}${SUFFIX}`;
}

/** The run a transcript URI (or source path) names, if it is one. */
export function runIdOfTranscript(uri: string): string | undefined {
  const match = /(run_[A-Za-z0-9]+)\.keel-transcript$/.exec(uri);
  return uri.startsWith(`${TRANSCRIPT_SCHEME}:`) ? match?.[1] : undefined;
}

/** The answer to `keel/position`: the step a session is stopped at. */
export interface StoppedAt {
  readonly runId: string;
  readonly rootRunId: string | null;
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  readonly name: string;
  /** Where it is among the session's positions, and how many there are. */
  readonly index: number;
  readonly steps: number;
  /** What Fork Run from Here opens for editing; null before the step has run. */
  readonly forkDocument: string | null;
}
