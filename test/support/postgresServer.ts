import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL server for tests: Debian's binaries (postgresql-15, or whatever version
 * is under /usr/lib/postgresql), a fresh cluster in a temporary folder, listening on 127.0.0.1 at
 * a free high port and on a unix socket in that folder, trusting local connections.
 */
export interface PostgresServer {
  /** `postgresql://postgres@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  /** A connection string for another database on the same server. */
  urlFor(database: string): string;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and removes its folder. */
  stop(): void;
}

/** Where initdb and pg_ctl are, or why there is no PostgreSQL to start. */
export function findPostgres(): { bin: string; version: string } | { missing: string } {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((name) => existsSync(join(root, name, 'bin', 'initdb')) && existsSync(join(root, name, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    return { missing: 'PostgreSQL is not installed (no initdb and pg_ctl under /usr/lib/postgresql/*/bin; apt-get install postgresql)' };
  }
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).status !== 0) {
    return { missing: 'PostgreSQL refuses to run as root and there is no postgres user to run it as' };
  }
  return { bin: join(root, newest, 'bin'), version: newest };
}

/** A port nothing listens on now, from the kernel's high ephemeral range. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts a server; throws with initdb's or pg_ctl's own words when it cannot. */
export async function startPostgres(): Promise<PostgresServer> {
  const found = findPostgres();
  if ('missing' in found) throw new Error(found.missing);
  const asRoot = process.getuid?.() === 0;
  // initdb and postgres refuse root: as root, they run as the postgres user, who must own the folder.
  const asServer = (command: string, args: readonly string[]) =>
    asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { encoding: 'utf8' }) : spawnSync(command, args, { encoding: 'utf8' });
  const dir = mkdtempSync(join(tmpdir(), 'keel-postgres-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const fail = (what: string, result: { stdout: string; stderr: string; status: number | null }): never => {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${what} failed (exit ${result.status}): ${(result.stderr || result.stdout).trim()}`);
  };
  const init = asServer(join(found.bin, 'initdb'), ['-D', data, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '--no-sync']);
  if (init.status !== 0) fail('initdb', init);
  const port = await freePort();
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=100`;
  const start = asServer(join(found.bin, 'pg_ctl'), ['-D', data, '-w', '-t', '30', '-l', join(dir, 'server.log'), '-o', options, 'start']);
  if (start.status !== 0) fail('pg_ctl start', start);
  const urlFor = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  let stopped = false;
  return {
    url: urlFor('postgres'),
    port,
    version: found.version,
    urlFor,
    stop() {
      if (stopped) return;
      stopped = true;
      asServer(join(found.bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
