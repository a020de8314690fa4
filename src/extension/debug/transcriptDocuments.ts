import * as vscode from 'vscode';
import { TRANSCRIPT_SCHEME, runIdOfTranscript, transcriptUri } from '../../protocol/debug';
import type { RuntimeClient } from '../client/runtimeClient';
import { DEBUG_TYPE } from './launchConfigurations';

/** The query of a transcript read from the run database rather than from a debug session. */
const FROM_STORE = 'store';

/** A run's transcript as the run database has it (a fork and its original, side by side). */
export function storedTranscriptUri(runId: string): vscode.Uri {
  return vscode.Uri.parse(transcriptUri(runId)).with({ query: FROM_STORE });
}

/**
 * `keel-transcript:` documents: a run as text, one block per step. A debug session that knows the
 * run answers (so a live step about to run is in it, and each frame's line is its step's); else
 * the run database does, as it does for `?store` ones (the diff of a fork).
 */
export class TranscriptDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly sessions = new Set<vscode.DebugSession>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly client: RuntimeClient) {
    this.disposables.push(
      vscode.debug.onDidStartDebugSession((session) => {
        if (session.type === DEBUG_TYPE) this.sessions.add(session);
      }),
      vscode.debug.onDidTerminateDebugSession((session) => this.sessions.delete(session)),
      vscode.debug.onDidReceiveDebugSessionCustomEvent((event) => {
        const runId = (event.body as { runId?: unknown } | undefined)?.runId;
        if (event.event === 'keel/runChanged' && typeof runId === 'string') this.changed.fire(vscode.Uri.parse(transcriptUri(runId)));
      }),
    );
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const runId = runIdOfTranscript(`${TRANSCRIPT_SCHEME}:${uri.path}`);
    if (!runId) return `${uri.toString()} names no Keel run.`;
    if (uri.query !== FROM_STORE) {
      for (const session of this.sessions) {
        try {
          return ((await session.customRequest('keel/transcript', { runId })) as { text: string }).text;
        } catch {
          // This session does not know the run; another one, or the database, may.
        }
      }
    }
    return (await this.client.request('getTranscript', { runId })).text;
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}
