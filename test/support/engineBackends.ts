import { PGlite } from '@electric-sql/pglite';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Engine, StartRequest } from '../../src/runtime/engine/engine';
import { Host } from '../../src/runtime/host/host';
import type { CheckpointStore } from '../../src/runtime/store/checkpointStore';
import { openPostgresStore } from '../../src/runtime/store/postgresStore';
import { KEEL, printedRunId } from './keelCli';
import { findPostgres, freePort, startPostgres, type PostgresServer } from './postgresServer';
import { REPO_ROOT, spawnNode, testEnv, within, type NodeProcess } from './processes';
import { findRestateServer, startRestateServer, type RestateServer } from './restateServer';

/**
 * The engines the conformance suite runs against, each behind the same few operations: an Engine
 * in the test process, a way to start a run in an executor the test can kill dead, what brings
 * a killed run back, and a restart of everything that executes runs.
 */

export interface Killable {
  readonly runId: string;
  /** Stops the run's executor dead, as SIGKILL does, and resolves once it is gone. */
  kill(): Promise<void>;
}

export interface EngineHarness {
  /** The engine this process uses: a new one after `restart()`. */
  readonly engine: Engine;
  readonly store: CheckpointStore;
  /** Where `keel --db` finds the store, when it can (PGlite lives in this process). */
  readonly location: string | undefined;
  /** Starts a run in an executor that `kill()` stops dead. */
  startKillable(request: StartRequest): Promise<Killable>;
  /** After a run's executor was killed: what brings it back (a local run is resumed; Restate goes on once its service is back). */
  recover(runId: string): Promise<void>;
  /** Stops everything that executes runs and starts it again, as after a reboot. */
  restart(): Promise<void>;
  /** Whether the executor exports the trace of each run that ends over OTLP (to OTEL_EXPORTER_OTLP_ENDPOINT of the suite's env). */
  readonly exportsTraces: boolean;
  /**
   * How many reservations on a shared budget the engine itself serialized (Restate: calls of the
   * budget's virtual object); absent where the store's own lock does it (the local engine).
   */
  readonly reservationsSerializedFor?: (budgetId: string) => Promise<number>;
}

export interface EngineBackend {
  readonly name: string;
  /** Resolves with why the backend cannot run here, or undefined once it is ready. */
  setUp(): Promise<string | undefined>;
  harness(): EngineHarness;
  tearDown(): Promise<void>;
}

/** The environment every executor gets: the conformance API's address. */
export interface SuiteContext {
  readonly env: Readonly<Record<string, string>>;
  /** One PostgreSQL server for the suite, started on first use; a reason when there is none. */
  postgres(): Promise<PostgresServer | string>;
}

export function sharedPostgres(): { get(): Promise<PostgresServer | string>; stop(): void } {
  let started: Promise<PostgresServer | string> | undefined;
  return {
    get() {
      started ??= (async () => {
        const found = findPostgres();
        return 'missing' in found ? found.missing : startPostgres();
      })();
      return started;
    },
    stop() {
      void started?.then((server) => {
        if (typeof server !== 'string') server.stop();
      });
    },
  };
}

let schemas = 0;

/** A new schema on the server, and a connection string whose search_path is that schema. */
async function freshSchema(server: PostgresServer): Promise<string> {
  schemas += 1;
  const schema = `keel_engine_${process.pid}_${schemas}`;
  const { Client } = await import('pg');
  const client = new Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await client.end();
  }
  return `postgresql://postgres@127.0.0.1:${server.port}/postgres?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

/**
 * The host a harness has open now, as the product opens one (the engine it names, its store); a
 * restart closes it and opens a new one.
 */
class Current {
  private opened: Host | undefined;

  constructor(private readonly name: string) {}

  get engine(): Engine {
    return this.now().engine;
  }

  get store(): CheckpointStore {
    return this.now().store;
  }

  set(host: Host): void {
    this.opened = host;
  }

  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await opened?.close();
  }

  private now(): Host {
    if (!this.opened) throw new Error(`${this.name} is not set up`);
    return this.opened;
  }
}

/** A folder of its own for a harness's host to find its project in (no keel.config.ts: flags say it all). */
function hostFolder(): string {
  return mkdtempSync(join(tmpdir(), 'keel-engine-host-'));
}

/** A harness over what `current` has open, where `keel --db` finds it at `location()`. */
function harnessOf(current: Current, location: () => string | undefined, rest: Omit<EngineHarness, 'engine' | 'store' | 'location'>): EngineHarness {
  return {
    get engine() {
      return current.engine;
    },
    get store() {
      return current.store;
    },
    get location() {
      return location();
    },
    ...rest,
  };
}

/** Starts `keel run` on a store it can reach; resolves once the run is recorded (its header printed). */
async function keelRunProcess(location: string, request: StartRequest, env: NodeJS.ProcessEnv): Promise<Killable> {
  const agent = basename(request.agentFile).replace(/\.agent\.ts$/, '');
  const proc = spawnNode(KEEL, ['run', request.agentFile, '--input', request.input, '--db', location], { env });
  proc.child.stdin.end();
  const runId = await within(
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const id = printedRunId(proc.stdout(), agent);
        if (id) resolve(id);
      };
      proc.child.stdout.on('data', check);
      void proc.exited.then(() => reject(new Error(`keel run exited before it started a run:\n${proc.stdout()}\n${proc.stderr()}`)));
    }),
    'keel run starting its run',
  );
  return { runId, kill: () => killProcess(proc) };
}

async function killProcess(proc: NodeProcess): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await proc.exited;
}

/** The local engine on a store a `keel` process can reach too (an SQLite file, a PostgreSQL server): runs are killed as processes. */
function localOnReachableStore(name: string, place: (context: SuiteContext) => Promise<string | { missing: string }>, context: SuiteContext): EngineBackend {
  let location = '';
  const current = new Current(name);
  const env = () => testEnv(context.env);
  const cwd = hostFolder();
  const open = async () => {
    current.set(await Host.open({ cwd, flags: { db: location }, env: env() }));
  };
  const harness = harnessOf(current, () => location, {
    // Runs started here execute in this process, whose host exports their traces as `keel run` does.
    exportsTraces: true,
    startKillable: (request) => keelRunProcess(location, request, env()),
    recover: async (runId) => {
      await current.engine.resume(runId);
    },
    async restart() {
      await current.close();
      await open();
    },
  });
  return {
    name,
    async setUp() {
      const found = await place(context);
      if (typeof found !== 'string') return found.missing;
      location = found;
      await open();
      return undefined;
    },
    harness: () => harness,
    tearDown: async () => {
      await current.close();
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

export function localSqlite(context: SuiteContext): EngineBackend {
  let dir = '';
  const backend = localOnReachableStore(
    'local engine on SQLite',
    () => {
      dir = mkdtempSync(join(tmpdir(), 'keel-engine-sqlite-'));
      return Promise.resolve(join(dir, 'keel.db'));
    },
    context,
  );
  return {
    ...backend,
    tearDown: async () => {
      await backend.tearDown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function localPostgres(context: SuiteContext): EngineBackend {
  return localOnReachableStore(
    'local engine on PostgreSQL (a Debian server)',
    async () => {
      const server = await context.postgres();
      return typeof server === 'string' ? { missing: server } : freshSchema(server);
    },
    context,
  );
}

/**
 * A store whose calls stop answering once `kill()` is called, as a dead process's would: the
 * execution using it freezes between two store calls (each a whole transaction), forever.
 */
function mortal(store: CheckpointStore): { store: CheckpointStore; kill(): void } {
  let dead = false;
  const frozen = new Promise<never>(() => undefined);
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, key) {
        const value: unknown = Reflect.get(object, key, object);
        if (typeof value === 'function') {
          const method = value as (...args: unknown[]) => unknown;
          return (...args: unknown[]) => (dead ? frozen : method.apply(object, args));
        }
        return typeof value === 'object' && value !== null && !Array.isArray(value) ? wrap(value) : value;
      },
    });
  return {
    store: wrap(store),
    kill: () => {
      dead = true;
    },
  };
}

/** An owner nobody is: a process of this host that has exited. */
function deadOwner(): string {
  const { pid } = spawnSync(process.execPath, ['-e', '0']);
  return `${hostname()}/${pid ?? 0}/exited`;
}

/**
 * The local engine on PGlite (PostgreSQL in WebAssembly, in this process). PGlite serves one
 * process and keeps nothing a crash would leave behind, so a run cannot be killed as a process:
 * its execution is killed in place instead, its store frozen between two calls and its owner a
 * process that has exited, which is what a killed process leaves in the database.
 */
export function localPglite(): EngineBackend {
  let db: PGlite | undefined;
  const current = new Current('PGlite');
  const schema = `keel_engine_${process.pid}`;
  const openOn = async () => {
    if (!db) throw new Error('PGlite is not started');
    return openPostgresStore({ client: db, location: `PGlite schema ${schema}` });
  };
  const cwd = hostFolder();
  const open = async () => {
    current.set(await Host.open({ cwd, store: await openOn(), env: testEnv() }));
  };
  const harness = harnessOf(current, () => undefined, {
    // Nothing exports here: PGlite's suite has no OTLP endpoint in its environment.
    exportsTraces: false,
    async startKillable(request) {
      const doomed = mortal(await openOn());
      const executor = await Host.open({ cwd, store: doomed.store, owner: deadOwner(), env: testEnv() });
      const runId = await executor.local.start(request);
      return { runId, kill: () => Promise.resolve(doomed.kill()) };
    },
    recover: async (runId) => {
      await current.engine.resume(runId);
    },
    async restart() {
      // The store shares PGlite's one connection, which stays open: a new store takes it over.
      await current.close();
      await open();
    },
  });
  return {
    name: 'local engine on PostgreSQL (PGlite, in process)',
    async setUp() {
      db = new PGlite();
      await db.waitReady;
      await db.query(`CREATE SCHEMA "${schema}"`);
      await db.query(`SET search_path TO "${schema}"`);
      await open();
      return undefined;
    },
    harness: () => harness,
    async tearDown() {
      await db?.close();
      db = undefined;
    },
  };
}

/**
 * The Restate engine: a real restate-server (from npm) on free ports, and `keel serve --engine
 * restate` serving the fixture agents from its own process, both recording runs in a store this
 * process reads too. Killing a run's executor kills that service process.
 */
export function restateOn(storeName: 'SQLite' | 'PostgreSQL', context: SuiteContext, agents: string): EngineBackend {
  let server: RestateServer | undefined;
  let service: NodeProcess | undefined;
  let servicePort = 0;
  let location = '';
  let dir = '';
  const current = new Current('Restate');
  const env = () => testEnv(context.env);

  const startService = async () => {
    if (!server) throw new Error('restate-server is not started');
    const proc = spawnNode(KEEL, ['serve', '--engine', 'restate', agents, '--port', String(servicePort), '--restate-admin', server.adminUrl, '--db', location], { env: env(), cwd: REPO_ROOT });
    service = proc;
    await within(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (proc.stdout().includes('Serving ')) resolve();
        };
        proc.child.stdout.on('data', check);
        void proc.exited.then(() => reject(new Error(`keel serve exited:\n${proc.stdout()}\n${proc.stderr()}`)));
      }),
      'keel serve registering with Restate',
      30_000,
    );
  };
  const stopService = async () => {
    const running = service;
    service = undefined;
    if (running) await killProcess(running);
  };
  const cwd = hostFolder();
  const open = async () => {
    if (!server) throw new Error('restate-server is not started');
    const flags = { db: location, engine: 'restate', 'restate-url': server.ingressUrl, 'restate-admin': server.adminUrl };
    current.set(await Host.open({ cwd, flags, env: env() }));
  };
  const harness = harnessOf(current, () => location, {
    // `keel serve` exports each run's trace when it ends.
    exportsTraces: true,
    async startKillable(request) {
      const runId = await current.engine.start(request);
      return { runId, kill: stopService };
    },
    recover: () => startService(),
    async reservationsSerializedFor(budgetId) {
      if (!server) throw new Error('restate-server is not started');
      const response = await fetch(`${server.adminUrl}/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: `SELECT count(*) AS calls FROM sys_invocation WHERE target = 'KeelBudget/${budgetId}/reserve'` }),
      });
      const { rows } = (await response.json()) as { rows: { calls: number }[] };
      return Number(rows[0]?.calls ?? 0);
    },
    async restart() {
      await stopService();
      await current.close();
      await server?.restart();
      await startService();
      await open();
    },
  });
  return {
    name: `Restate engine (a real restate-server) on ${storeName === 'SQLite' ? 'SQLite' : 'PostgreSQL (a Debian server)'}`,
    async setUp() {
      const found = findRestateServer();
      if ('missing' in found) return found.missing;
      if (storeName === 'PostgreSQL') {
        const postgres = await context.postgres();
        if (typeof postgres === 'string') return postgres;
        location = await freshSchema(postgres);
      } else {
        dir = mkdtempSync(join(tmpdir(), 'keel-engine-restate-'));
        location = join(dir, 'keel.db');
      }
      server = await startRestateServer();
      servicePort = await freePort();
      await open();
      await startService();
      return undefined;
    },
    harness: () => harness,
    async tearDown() {
      await stopService();
      await current.close();
      await server?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
