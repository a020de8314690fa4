import type { Pool } from 'pg';
import { StoreError, describeError } from '../errors';
import type { SqlSession } from './postgresMigrations';
import { redactConnectionString } from './storeLocation';

/** How many times a transaction PostgreSQL rolled back for a deadlock or a serialization failure is tried. */
const TRANSACTION_ATTEMPTS = 5;

/** A pool of connections (node-postgres' Pool): transactions each take a connection of their own. */
export interface SqlPool extends SqlSession {
  connect(): Promise<SqlSession & { release(destroy?: boolean | Error): void }>;
}

/**
 * Where the PostgreSQL store keeps its data:
 * - a connection string: Keel opens a pool of its own and closes it with the store;
 * - `{ client }`: one connection (node-postgres' Client, or PGlite), used for one thing at a time;
 * - `{ pool }`: a pool, as node-postgres' Pool.
 * Connections passed in belong to the caller: closing the store leaves them open.
 */
export type PostgresTarget =
  | string
  | { readonly client: SqlSession; readonly location?: string }
  | { readonly pool: SqlPool; readonly location?: string };

/** Opens the connection a target names; for a connection string, a pool of Keel's own, checked with a first statement. */
export async function connect(target: PostgresTarget, options: { readonly maxConnections?: number } = {}): Promise<Connection> {
  if (typeof target !== 'string') {
    const location = target.location ?? 'a PostgreSQL database';
    if ('pool' in target) return new PoolConnection(target.pool, location);
    // A pool's statements go to any of its connections, so a transaction begun on it would not hold.
    if (typeof (target.client as { totalCount?: unknown }).totalCount === 'number') {
      throw new StoreError('A pool of connections was passed as { client }; pass it as { pool } so that each transaction keeps to one connection.');
    }
    return new SingleConnection(target.client, location);
  }
  const location = redactConnectionString(target);
  const { Pool: PgPool } = await import('pg');
  // Parameters in the connection string win over these.
  const pool: Pool = new PgPool({
    application_name: 'keel',
    connectionTimeoutMillis: 10_000,
    ...(options.maxConnections === undefined ? {} : { max: options.maxConnections }),
    connectionString: target,
  });
  // A connection that breaks while idle (the server restarted) is dropped by the pool; without a
  // listener its error would end the process. The next query reports the problem.
  pool.on('error', () => undefined);
  const connection = new PoolConnection(pool, location, () => pool.end());
  try {
    await connection.query('SELECT 1');
  } catch (error) {
    await connection.close().catch(() => undefined);
    // The first statement fails for want of a server, a login or a database: say so as such.
    const cause = error instanceof StoreError && error.cause !== undefined ? error.cause : error;
    throw new StoreError(`Keel cannot connect to its PostgreSQL database ${location}: ${sentence(cause)}`, { cause });
  }
  return connection;
}

/** How the store talks to PostgreSQL: single statements, and transactions on one connection. */
export interface Connection {
  /** For messages: without a password. */
  readonly location: string;
  /** One statement, in no transaction. */
  query(text: string, values?: unknown[]): Promise<unknown[]>;
  /** Statements that need no transaction but one connection (their session settings are the same). */
  read<T>(work: (db: SqlSession) => Promise<T>): Promise<T>;
  /**
   * `work` in one transaction, committed when it resolves and rolled back when it throws. Tried
   * again when PostgreSQL rolled it back for a deadlock or a serialization failure.
   */
  transaction<T>(work: (db: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The work queued on each single connection, however many stores share it. */
const connectionQueues = new WeakMap<SqlSession, Promise<unknown>>();

/**
 * One connection used for one thing at a time: statements of two transactions must not interleave
 * on it, even when two stores share it.
 */
class SingleConnection implements Connection {
  private readonly db: SqlSession;

  constructor(
    private readonly client: SqlSession,
    readonly location: string,
  ) {
    this.db = translated(client, location);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = (connectionQueues.get(this.client) ?? Promise.resolve()).then(work);
    connectionQueues.set(
      this.client,
      result.then(
        () => undefined,
        () => undefined,
      ),
    );
    return result;
  }

  query(text: string, values?: unknown[]): Promise<unknown[]> {
    return this.exclusive(async () => (await this.db.query(text, values)).rows);
  }

  read<T>(work: (db: SqlSession) => Promise<T>): Promise<T> {
    return this.exclusive(() => work(this.db));
  }

  transaction<T>(work: (db: SqlSession) => Promise<T>): Promise<T> {
    return this.exclusive(() => retried(() => inTransaction(this.db, work)));
  }

  /** The connection is the caller's: closing waits for what is under way and leaves it open. */
  async close(): Promise<void> {
    await this.exclusive(() => Promise.resolve());
  }
}

/** A pool: single statements go to any connection, a transaction takes one for itself. */
class PoolConnection implements Connection {
  private readonly db: SqlSession;

  constructor(
    private readonly pool: SqlPool,
    readonly location: string,
    private readonly end?: () => Promise<void>,
  ) {
    this.db = translated(pool, location);
  }

  async query(text: string, values?: unknown[]): Promise<unknown[]> {
    return (await this.db.query(text, values)).rows;
  }

  read<T>(work: (db: SqlSession) => Promise<T>): Promise<T> {
    return this.withClient(work);
  }

  transaction<T>(work: (db: SqlSession) => Promise<T>): Promise<T> {
    return retried(() => this.withClient((db) => inTransaction(db, work)));
  }

  private async withClient<T>(work: (db: SqlSession) => Promise<T>): Promise<T> {
    let client: Awaited<ReturnType<SqlPool['connect']>>;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw connectionError(error, this.location);
    }
    let broken: Error | undefined;
    try {
      return await work(translated(client, this.location));
    } catch (error) {
      // A connection that failed is not handed to anyone else.
      if (error instanceof StoreError && error.context['connection'] === true) broken = error;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.end?.();
  }
}

async function inTransaction<T>(db: SqlSession, work: (db: SqlSession) => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  let result: T;
  try {
    result = await work(db);
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  await db.query('COMMIT');
  return result;
}

/** Tries a transaction again when PostgreSQL rolled it back to break a deadlock or a serialization conflict. */
async function retried<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      const code = sqlState(error);
      if (tries >= TRANSACTION_ATTEMPTS || (code !== '40001' && code !== '40P01')) throw error;
    }
  }
}

/** A session whose failures to reach the server become one StoreError sentence; database errors pass as they are. */
function translated(session: SqlSession, location: string): SqlSession {
  return {
    query: async (text, values) => {
      try {
        return await session.query(text, values);
      } catch (error) {
        throw isConnectionFailure(error) ? connectionError(error, location) : error;
      }
    },
  };
}

function connectionError(error: unknown, location: string): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError(`Keel lost its connection to the PostgreSQL database ${location}: ${sentence(error)}`, {
    cause: error,
    context: { connection: true },
  });
}

/** The SQLSTATE of a database error (five characters), if it is one. */
function sqlState(error: unknown): string | undefined {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether an error says the server is out of reach rather than that a statement failed: a
 * connection exception (SQLSTATE class 08), the server shutting down (57P01-57P03), a socket
 * error (ECONNREFUSED, ENOTFOUND...), or the driver saying the connection ended or timed out.
 */
function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof StoreError) return false;
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith('08') || /^57P0[123]$/.test(state);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return /connect|connection|terminated|timeout|timed out|not queryable|socket/i.test(error.message);
}

/**
 * An error's message as the end of a sentence. Node reports a refused connection to a name with
 * several addresses as an AggregateError without a message: its parts say what happened.
 */
export function sentence(error: unknown): string {
  const parts = error instanceof AggregateError && !error.message ? [...new Set(error.errors.map(describeError))] : [describeError(error)];
  const text = parts.join('; ').trim();
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
