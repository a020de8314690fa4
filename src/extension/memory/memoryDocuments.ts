import * as vscode from 'vscode';
import type { RuntimeClient } from '../client/runtimeClient';

/**
 * A memory value as an editable JSON document: `keel-memory:/<namespace>/<key>.json`. Only `%`
 * and `/` are escaped in each part, so the title and the breadcrumbs read `user:ada` as it is.
 */
export const MEMORY_SCHEME = 'keel-memory';

export function memoryUri(namespace: string, key: string): vscode.Uri {
  return vscode.Uri.from({ scheme: MEMORY_SCHEME, path: `/${pathSegment(namespace)}/${pathSegment(key)}.json` });
}

function pathSegment(text: string): string {
  return text.replaceAll('%', '%25').replaceAll('/', '%2F');
}

export function memoryAddress(uri: vscode.Uri): { namespace: string; key: string } | undefined {
  const [, namespace, file] = uri.path.split('/');
  if (namespace === undefined || file === undefined || !file.endsWith('.json')) return undefined;
  return { namespace: decodeURIComponent(namespace), key: decodeURIComponent(file.slice(0, -'.json'.length)) };
}

/**
 * Memory values as files: reading gives the value as JSON; saving writes it back through the
 * runtime process as the person's edit (it keeps its channel), refused when the value is not JSON
 * or changed since it was opened.
 */
export class MemoryDocuments implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;
  /** The revision each open value was read at: a save must find it still there. */
  private readonly revisions = new Map<string, number | null>();

  constructor(
    private readonly client: RuntimeClient,
    private readonly onSaved: () => void,
  ) {}

  dispose(): void {
    this.changed.dispose();
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const address = memoryAddress(uri);
    if (!address) return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0 };
    const item = await this.client.request('getMemory', address);
    if (!item) throw vscode.FileSystemError.FileNotFound(uri);
    return { type: vscode.FileType.File, ctime: item.createdAt, mtime: item.updatedAt, size: Buffer.byteLength(text(item.value)) };
  }

  readDirectory(): [string, vscode.FileType][] {
    return [];
  }

  createDirectory(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const address = memoryAddress(uri);
    const item = address && (await this.client.request('getMemory', address));
    if (!item) throw vscode.FileSystemError.FileNotFound(uri);
    this.revisions.set(uri.toString(), item.revision);
    return new TextEncoder().encode(text(item.value));
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array): Promise<void> {
    const address = memoryAddress(uri);
    if (!address) throw vscode.FileSystemError.NoPermissions(uri);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(content)) as unknown;
    } catch (error) {
      throw new Error(`Not saved: the value must be JSON (${error instanceof Error ? error.message : String(error)}). Quote plain text, as "text".`);
    }
    const item = await this.client.request('putMemory', { ...address, value, expectedRevision: this.revisions.get(uri.toString()) ?? null });
    this.revisions.set(uri.toString(), item.revision);
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
    this.onSaved();
  }

  async delete(uri: vscode.Uri): Promise<void> {
    const address = memoryAddress(uri);
    if (!address) throw vscode.FileSystemError.NoPermissions(uri);
    await this.client.request('deleteMemory', address);
    this.revisions.delete(uri.toString());
    this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
    this.onSaved();
  }

  rename(oldUri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(oldUri);
  }
}

function text(value: unknown): string {
  return `${JSON.stringify(value, null, 2) ?? 'null'}\n`;
}
