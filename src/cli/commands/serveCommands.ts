import { existsSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { RunEvent } from '../../runtime/agent/events';
import { KeelError } from '../../runtime/errors';
import { ENGINE_FLAGS } from '../engines';
import { runHeader, runOutcome, runSummary, stepLine } from '../render';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';

/** `keel serve --engine restate`: the workspace's agents as Restate services, until Ctrl-C. */

async function serve(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...ENGINE_FLAGS,
    port: { type: 'string' },
    host: { type: 'string' },
    advertise: { type: 'string' },
  });
  const port = values.port === undefined ? 9080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port needs a port number (got "${values.port ?? ''}").`);

  return withHost(values, async (host) => {
    if (host.config.engine !== 'restate') {
      throw new UsageError('keel serve serves agents on Restate: keel serve --engine restate (or engine.kind in keel.config.ts). The local engine needs no server: keel run executes runs in place.');
    }
    const { root, restateAdminUrl: adminUrl, restateIngressUrl } = host.config;
    // The Restate SDK takes a few hundred milliseconds to load: only this command needs it.
    const { findAgentFiles, serveAgents } = await import('../../runtime/engine/restate/restateService.js');
    const files = positionals.length === 0 ? findAgentFiles(root) : positionals.flatMap((path) => agentFilesAt(resolve(path), findAgentFiles));
    const service = await serveAgents({
      store: host.store,
      agentFiles: files,
      port,
      ...(values.host === undefined ? {} : { host: values.host }),
      ...(values.advertise === undefined ? {} : { advertisedUrl: values.advertise }),
      adminUrl,
      runtime: host.runtime,
      describe,
      onEnded: async (runId) => {
        const run = await host.store.getRun(runId);
        if (run) await host.afterRun(run);
      },
      log: (line) => process.stderr.write(`${line}\n`),
    });
    // Alerts that the store shows (approvals waiting or escalated, spend) are raised and delivered while serving.
    host.startBackground(15_000);
    out.write(
      `Serving ${service.agents.length} agent${service.agents.length === 1 ? '' : 's'} on Restate from ${service.url}, registered with ${adminUrl}:\n` +
        service.agents.map((agent) => `  ${style.bold(agent.name)}  ${style.dim(agent.workflow)}  ${shown(root, agent.file)}`).join('\n') +
        `\nRuns are recorded in ${host.store.location}. Start one with: npx keel run <file.agent.ts> --engine restate --restate-url ${restateIngressUrl} --input <text>\n`,
    );
    await new Promise<void>((resolveStop) => {
      process.once('SIGINT', resolveStop);
      process.once('SIGTERM', resolveStop);
    });
    await service.close();
    out.write('Stopped serving; Restate keeps the runs in flight and continues them when a service is back.\n');
    return 0;
  });
}

/** An agent file as given, or the agent files under a folder. */
function agentFilesAt(path: string, find: (root: string) => string[]): string[] {
  if (!existsSync(path)) throw new KeelError(`There is no file or folder ${path} to serve agents from.`);
  return statSync(path).isDirectory() ? find(path) : [path];
}

function shown(root: string, file: string): string {
  const path = relative(root, file);
  return path.startsWith('..') ? file : path;
}

/** The service's log: a line when a run starts, at each step it ends, and when it stops. */
function describe(event: RunEvent): string | undefined {
  switch (event.type) {
    case 'run_started':
      return runHeader(event.run, style);
    case 'step_finished':
      return `${style.dim(event.step.runId)} ${stepLine(event.step, style).trimStart()}`;
    case 'run_finished':
      return `${style.dim(event.run.id)} ${runSummary(event.run, style)}${event.run.state === 'waiting_approval' ? '' : `\n${runOutcome(event.run)}`}`;
    default:
      return undefined;
  }
}

export const serveCommands: Readonly<Record<string, Command>> = {
  serve: {
    usage: [
      'keel serve --engine restate [<agent files or folders>] [--port <n>] [--restate-admin <url>]',
      '         [--advertise <url>]   serve the workspace\'s agents as Restate workflows (docs/deployment.md)',
    ],
    run: serve,
  },
};
