import { join } from 'node:path';
import type { DaemonRequests } from '../protocol/daemon';
import type { RequestHandlers } from '../protocol/jsonRpc';
import type { Host } from '../runtime/host/host';
import { HELLO_AGENT } from '../runtime/scaffold/projectFiles';
import { scaffoldProject } from '../runtime/scaffold/scaffoldProject';

type ProjectRequests = Pick<DaemonRequests, 'createProject'>;

/**
 * Keel: Create Agent…: the project `keel init` writes, by the same code. The golden case's
 * cassette is recorded (which runs the new agent) only when the editor trusts the workspace.
 */
export function projectHandlers(host: () => Host): RequestHandlers<ProjectRequests> {
  return {
    createProject: async ({ folder }) => {
      const result = await scaffoldProject(folder, { record: host().trusted });
      return { folder, agentFile: join(folder, HELLO_AGENT), written: result.written, todo: result.todo, wrotePackageJson: result.wrotePackageJson };
    },
  };
}
