import type { RunEvent } from '../runtime/agent/events';
import type { RunRecord, StepRecord } from '../runtime/store/checkpointStore';

/** Messages between the extension host and the Run webview, one union per direction. */

export type HostToRunView =
  | { readonly type: 'run'; readonly run: RunRecord; readonly steps: readonly StepRecord[] }
  | { readonly type: 'event'; readonly event: RunEvent }
  | { readonly type: 'error'; readonly message: string };

export type RunViewToHost = { readonly type: 'ready' } | { readonly type: 'openAgentFile'; readonly file: string };

/** What the Run webview keeps across reloads (vscode.getState / setState and the panel serializer). */
export interface RunViewState {
  readonly runId: string;
}
