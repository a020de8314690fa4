import { isAbsolute, relative } from 'node:path';

/**
 * The file a Run view's agent-file link may open: the run's own agent file, inside a workspace
 * folder, or nothing. The webview shows content from models and tools, so what it asks for is
 * checked here rather than trusted.
 */
export function agentFileToOpen(requested: string, recorded: string | null | undefined, workspaceFolders: readonly string[]): string | undefined {
  if (!recorded || requested !== recorded || !isAbsolute(recorded)) return undefined;
  const inside = workspaceFolders.some((folder) => {
    const path = relative(folder, recorded);
    return path !== '' && !path.startsWith('..') && !isAbsolute(path);
  });
  return inside ? recorded : undefined;
}
