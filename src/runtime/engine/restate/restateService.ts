import * as restate from '@restatedev/restate-sdk';
import { globSync } from 'node:fs';
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadAgentFile } from '../../agent/loader';
import { KeelError, describeError } from '../../errors';
import { agentWorkflow, type AgentWorkflowOptions } from './agentWorkflow';
import { workflowNameFor } from './naming';
import { budgetObject } from './budgetObject';
import { restateRequest } from './restateHttp';

/**
 * `keel serve --engine restate`: every agent of a workspace served as a Restate workflow (and the
 * shared budgets as a virtual object) from one HTTP/2 endpoint, registered with the Restate
 * server's admin API so that its ingress routes runs here.
 */

export interface ServeOptions extends AgentWorkflowOptions {
  /** The agent files to serve (absolute paths). */
  readonly agentFiles: readonly string[];
  /** Where to listen: port 0 picks a free one. */
  readonly port: number;
  readonly host?: string;
  /** The Restate server's admin API, to register with (`http://127.0.0.1:9070`). */
  readonly adminUrl: string;
  /** The URL Restate calls this service at; `http://<host>:<port>` by default. */
  readonly advertisedUrl?: string;
  /** Where the service's own messages go (its warnings, failed invocations). */
  readonly log?: (line: string) => void;
}

export interface ServedAgent {
  readonly name: string;
  readonly file: string;
  /** The Restate workflow it is served as: `keel.<name>`. */
  readonly workflow: string;
}

export interface RestateService {
  /** The URL Restate calls, as registered. */
  readonly url: string;
  readonly agents: readonly ServedAgent[];
  close(): Promise<void>;
}

/** The agent files of a workspace (`**\/*.agent.ts`), outside node_modules and hidden folders. */
export function findAgentFiles(root: string): string[] {
  return globSync('**/*.agent.ts', { cwd: root, exclude: (name) => name === 'node_modules' || name.startsWith('.') })
    .map((file) => join(root, file))
    .sort();
}

export async function serveAgents(options: ServeOptions): Promise<RestateService> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const agents: ServedAgent[] = [];
  const workflows = [];
  for (const file of options.agentFiles) {
    const { agent } = await loadAgentFile(file);
    const same = agents.find((served) => served.name === agent.name);
    if (same) {
      throw new KeelError(`Two agent files define the agent "${agent.name}" (${same.file} and ${file}); Restate serves each agent once, so rename one.`);
    }
    agents.push({ name: agent.name, file, workflow: workflowNameFor(agent.name) });
    workflows.push(agentWorkflow(agent, file, options));
  }
  if (agents.length === 0) throw new KeelError('There are no agent files (*.agent.ts) to serve here.');

  const handler = restate.createEndpointHandler({
    services: [...workflows, budgetObject(options.store)],
    logger: (meta, message: unknown, ...more: unknown[]) => {
      if (meta.replaying) return;
      // The runs' own lines, and what went wrong; the SDK's chatter about each invocation is left out.
      const user = meta.source === ('USER' as restate.LogSource);
      const problem = meta.level === ('warn' as restate.RestateLogLevel) || meta.level === ('error' as restate.RestateLogLevel);
      if (!user && !problem) return;
      const text = [message, ...more].map((part) => (part instanceof Error ? describeError(part) : String(part))).join(' ');
      if (/request signatures/.test(text)) return;
      log(user ? text : `${meta.context ? `${meta.context.invocationTarget}: ` : ''}${text}`);
    },
  });
  const server: Http2Server = createServer(handler);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new KeelError(`Could not listen on ${host}:${options.port}: ${describeError(error)}`, { cause: error })));
    server.listen(options.port, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = options.advertisedUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Restate keeps an HTTP/2 session open; close() would wait for it to time out.
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const session of sessions) session.destroy();
    });
  try {
    await restateRequest({ base: options.adminUrl, api: 'admin' }, 'POST', '/deployments', { uri: url, force: true });
  } catch (error) {
    await close();
    throw error;
  }
  return { url, agents, close };
}
