import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgresServer';

/**
 * A throwaway Restate server for tests: the real `restate-server` binary from npm
 * (@restatedev/restate-server), on free ports of 127.0.0.1, its data in a temporary folder. Its
 * retries are made brisk, so that an invocation whose service died is tried again within a
 * fraction of a second once the service is back.
 */
export interface RestateServer {
  readonly ingressUrl: string;
  readonly adminUrl: string;
  /** Kills the server (SIGKILL) and starts it again on the same data and ports. */
  restart(): Promise<void>;
  /** Kills the server and removes its data. */
  stop(): Promise<void>;
}

/** The restate-server binary, or why there is none. */
export function findRestateServer(): { binary: string } | { missing: string } {
  try {
    const binary = require.resolve(`@restatedev/restate-server-${platform()}-${arch()}/bin/restate-server`);
    return existsSync(binary) ? { binary } : { missing: `${binary} is missing` };
  } catch {
    return { missing: `@restatedev/restate-server has no binary for ${platform()}-${arch()} in node_modules (npm install)` };
  }
}

export async function startRestateServer(): Promise<RestateServer> {
  const found = findRestateServer();
  if ('missing' in found) throw new Error(found.missing);
  const dir = mkdtempSync(join(tmpdir(), 'keel-restate-'));
  const [ingress, admin, node] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    RESTATE_BIND_IP: '127.0.0.1',
    RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingress}`,
    RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${admin}`,
    RESTATE_BIND_ADDRESS: `127.0.0.1:${node}`,
    RESTATE_DEFAULT_NUM_PARTITIONS: '4',
    RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE: '256 MiB',
    RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL: '50ms',
    RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL: '250ms',
    RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS: '1000',
  };
  const ingressUrl = `http://127.0.0.1:${ingress}`;
  const adminUrl = `http://127.0.0.1:${admin}`;
  let child: ChildProcess | undefined;
  let log = '';

  const launch = async () => {
    log = '';
    const started = spawn(found.binary, ['--listen-mode', 'tcp', '--base-dir', join(dir, 'data'), '--no-logo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child = started;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`restate-server exited with ${started.exitCode}:\n${log.slice(-3000)}`);
      const healthy = await Promise.all([fetch(`${adminUrl}/health`), fetch(`${ingressUrl}/restate/health`)]).then(
        (responses) => responses.every((response) => response.ok),
        () => false,
      );
      if (healthy) return;
      if (Date.now() > deadline) throw new Error(`restate-server did not become healthy within 30 s:\n${log.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    ingressUrl,
    adminUrl,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
