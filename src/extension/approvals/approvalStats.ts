import * as vscode from 'vscode';
import { statsDocument } from './approvalText';
import type { RuntimeClient } from '../client/runtimeClient';

const STATS_URI = vscode.Uri.from({ scheme: 'keel-approval-stats', path: '/Keel Approval Stats.md' });

/** Keel: Show Approval Stats: how often people are asked, what they decide and how fast, as a read-only document. */
export class ApprovalStatsDocument implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly registration: vscode.Disposable;
  private latest: string | undefined;

  constructor(private readonly client: RuntimeClient) {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(STATS_URI.scheme, {
      onDidChange: this.changed.event,
      provideTextDocumentContent: async () => this.latest ?? (await this.read()),
    });
  }

  /** Opens the stats, read again from the database; resolves with what they say. */
  async show(): Promise<string> {
    this.latest = await this.read();
    this.changed.fire(STATS_URI);
    const document = await vscode.workspace.openTextDocument(STATS_URI);
    await vscode.window.showTextDocument(document, { preview: false });
    return this.latest;
  }

  dispose(): void {
    this.registration.dispose();
    this.changed.dispose();
  }

  private async read(): Promise<string> {
    return statsDocument(await this.client.request('approvalStats', {}), Date.now());
  }
}
