import { PGlite } from '@electric-sql/pglite';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import type { CheckpointStore } from '../../src/runtime/store/checkpointStore';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from '../../src/runtime/store/postgresMigrations';
import { openPostgresStore, type SqlSession } from '../../src/runtime/store/postgresStore';
import { SQLITE_MIGRATIONS } from '../../src/runtime/store/sqliteMigrations';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { findPostgres, startPostgres, type PostgresServer } from './postgresServer';

/**
 * The stores the conformance suite runs against, each behind the same handful of operations: make
 * an empty database, open a store on it (again, as a new process would), and make it look like
 * a database Keel must refuse.
 */
export interface StoreBackend {
  readonly name: string;
  /** Whether stores opened on one place use connections of their own (so transactions really run at once). */
  readonly concurrent: boolean;
  /** Whether opening a database that is already current leaves it byte for byte as it was (SQLite's WAL does not). */
  readonly opensCurrentWithoutWriting: boolean;
  /** Resolves with why the backend cannot run here, or undefined when it is ready. */
  setUp(): Promise<string | undefined>;
  tearDown(): Promise<void>;
  /** A new, empty place for a database: a file, or a schema. */
  fresh(): Promise<string>;
  /** Opens a store there, as a process starting now would. */
  open(place: string, migrations?: readonly PostgresMigration[]): Promise<CheckpointStore>;
  /** Where `open` opens, as people would give it to `--db`, if they can (PGlite lives in this process). */
  locationOf(place: string): string | undefined;
  /** The schema version the database says it is at, and whether it is marked as Keel's. */
  version(place: string): Promise<{ keel: boolean; version: number }>;
  /** The version Keel's own migrations take a new database to. */
  readonly latest: number;
  /** Makes the place look like a database a newer Keel wrote. */
  makeNewer(place: string, version: number): Promise<void>;
  /** Makes the place look like a database another program made. */
  makeForeign(place: string): Promise<void>;
  /** Everything about the place that opening must not change, as text to compare. */
  snapshot(place: string): Promise<string>;
}

const KEEL_APPLICATION_ID = 0x4b45454c;

export function sqliteBackend(): StoreBackend {
  let dir = '';
  let count = 0;
  return {
    name: 'SQLite (a file)',
    concurrent: false,
    opensCurrentWithoutWriting: false,
    latest: SQLITE_MIGRATIONS.length,
    setUp() {
      dir = mkdtempSync(join(tmpdir(), 'keel-conformance-'));
      return Promise.resolve(undefined);
    },
    tearDown() {
      if (dir) rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    fresh() {
      count += 1;
      return Promise.resolve(join(dir, `db${count}`, 'keel.db'));
    },
    open: (place) => Promise.resolve(openSqliteStore(place)),
    locationOf: (place) => place,
    version(place) {
      const db = new Database(place, { readonly: true });
      try {
        return Promise.resolve({
          keel: db.pragma('application_id', { simple: true }) === KEEL_APPLICATION_ID,
          version: db.pragma('user_version', { simple: true }) as number,
        });
      } finally {
        db.close();
      }
    },
    makeNewer(place, version) {
      rmSync(place, { force: true });
      const db = new Database(ensureDir(place));
      db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
      db.pragma(`user_version = ${version}`);
      db.exec('CREATE TABLE future (x)');
      db.close();
      return Promise.resolve();
    },
    makeForeign(place) {
      const db = new Database(ensureDir(place));
      db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
      db.prepare('INSERT INTO customers (name) VALUES (?)').run('Ada');
      db.close();
      return Promise.resolve();
    },
    snapshot(place) {
      // Digests: a difference shows as two short lines, not two copies of the file.
      const files = [place, `${place}-wal`, `${place}-shm`].map((file) => (existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : '-'));
      return Promise.resolve(files.join('\n'));
    },
  };
}

function ensureDir(file: string): string {
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

/** Statements in SQL that a PostgreSQL backend runs as the tests' administrator. */
interface Admin {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** What the two PostgreSQL backends (PGlite and a real server) do the same way: a schema per test. */
function postgresPlaces(admin: () => Admin) {
  let count = 0;
  const q = (schema: string) => `"${schema}"`;
  return {
    latest: POSTGRES_MIGRATIONS.length,
    async fresh(): Promise<string> {
      count += 1;
      const schema = `keel_test_${process.pid}_${count}`;
      await admin().query(`CREATE SCHEMA ${q(schema)}`);
      return schema;
    },
    async version(schema: string): Promise<{ keel: boolean; version: number }> {
      const { rows } = await admin().query(`SELECT application, version FROM ${q(schema)}.keel_schema`);
      const [row] = rows as { application: string; version: number }[];
      return { keel: row?.application === 'keel', version: row?.version ?? 0 };
    },
    async makeNewer(schema: string, version: number): Promise<void> {
      await admin().query(`CREATE TABLE ${q(schema)}.keel_schema (application TEXT NOT NULL, version INTEGER NOT NULL)`);
      await admin().query(`INSERT INTO ${q(schema)}.keel_schema VALUES ('keel', $1)`, [version]);
      await admin().query(`CREATE TABLE ${q(schema)}.future (x INTEGER)`);
    },
    async makeForeign(schema: string): Promise<void> {
      await admin().query(`CREATE TABLE ${q(schema)}.customers (id SERIAL PRIMARY KEY, name TEXT)`);
      await admin().query(`INSERT INTO ${q(schema)}.customers (name) VALUES ('Ada')`);
    },
    async snapshot(schema: string): Promise<string> {
      const relations = await admin().query(
        `SELECT c.relname, c.relkind, (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)::int AS columns
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY c.relname`,
        [schema],
      );
      const tables = (relations.rows as { relname: string; relkind: string }[]).filter((row) => row.relkind === 'r');
      const contents: unknown[] = [];
      for (const table of tables) contents.push((await admin().query(`SELECT * FROM ${q(schema)}.${q(table.relname)}`)).rows);
      return JSON.stringify({ relations: relations.rows, contents });
    },
  };
}

/** PGlite: PostgreSQL compiled to WebAssembly, in this process, on one connection. */
export function pgliteBackend(): StoreBackend {
  let db: PGlite | undefined;
  const admin = (): PGlite => {
    if (!db) throw new Error('PGlite is not started');
    return db;
  };
  const places = postgresPlaces(admin);
  return {
    name: 'PostgreSQL on PGlite (in process)',
    concurrent: false,
    opensCurrentWithoutWriting: true,
    ...places,
    async setUp() {
      db = new PGlite();
      await db.waitReady;
      return undefined;
    },
    async tearDown() {
      await db?.close();
      db = undefined;
    },
    async open(schema, migrations) {
      // One connection: its search_path is the test's schema.
      await admin().query(`SET search_path TO "${schema}"`);
      const client: SqlSession = admin();
      return openPostgresStore({ client, location: `PGlite schema ${schema}` }, migrations ? { migrations } : {});
    },
    locationOf: () => undefined,
  };
}

/** A real PostgreSQL server (Debian's), started for the suite; each store opened has a pool of its own. */
export function postgresServerBackend(): StoreBackend & { server(): PostgresServer; urlFor(schema: string, user?: string): string } {
  let server: PostgresServer | undefined;
  let client: Client | undefined;
  const admin = (): Client => {
    if (!client) throw new Error('PostgreSQL is not started');
    return client;
  };
  const places = postgresPlaces(admin);
  const running = (): PostgresServer => {
    if (!server) throw new Error('PostgreSQL is not started');
    return server;
  };
  const urlFor = (schema: string, user = 'postgres') =>
    `postgresql://${user}@127.0.0.1:${running().port}/postgres?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    name: 'PostgreSQL server (Debian, a throwaway cluster)',
    concurrent: true,
    opensCurrentWithoutWriting: true,
    ...places,
    async setUp() {
      const found = findPostgres();
      if ('missing' in found) return found.missing;
      server = await startPostgres();
      client = new Client({ connectionString: server.url });
      await client.connect();
      return undefined;
    },
    async tearDown() {
      await client?.end().catch(() => undefined);
      client = undefined;
      server?.stop();
      server = undefined;
    },
    open: (schema, migrations) => openPostgresStore(urlFor(schema), migrations ? { migrations } : {}),
    locationOf: (schema) => urlFor(schema),
    server: running,
    urlFor,
  };
}
