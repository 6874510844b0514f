// PostgreSQL connections: the settings the query pool and the LISTEN client share, and the store's statement deadline.
import type pg from 'pg';
import { lazyRequire } from '../lib/lazy-require.js';
import { Kysely, PostgresDialect, type PostgresCursor, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import type { Logger } from '../lib/logger.js';
import { TimeoutError, withTimeout } from '../lib/with-timeout.js';
import { DatabaseTimeoutError } from './errors.js';
import type { Tables } from './schema.js';

/** pg, loaded by the first PostgreSQL connection (exported for the LISTEN client). */
export const loadPg = lazyRequire<typeof pg>('pg');

export interface PostgresSettings {
  url: string;
  /** Schema every connection works in; when absent, the server's default search_path applies. */
  schema?: string;
  poolSize?: number;
}

/** How long opening a connection may take: the handshake, and for the LISTEN connection its LISTEN. */
export const CONNECT_TIMEOUT_MS = 5000;

/** Idle time before the first TCP keepalive probe on every PostgreSQL connection. */
export const KEEPALIVE_IDLE_MS = 10_000;

/**
 * How long a statement of the store's own (the admin API's reads and writes, snapshot loads, key-value map puts) may go
 * unanswered before its connection is taken for dead. A server or NAT gone silent answers nothing, and TCP keepalive
 * finds that out only after minutes: admin requests hung that long, and a transaction stalled mid-way committed once
 * the network came back, long after its client had been told nothing. One statement takes milliseconds; the longest
 * are a snapshot's reads of every key and app.
 */
export const STATEMENT_DEADLINE_MS = 5000;

export function clientConfig(settings: PostgresSettings, applicationName: string): pg.ClientConfig {
  return {
    connectionString: settings.url,
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A server or NAT that goes silent (no reset) would leave a query, or the LISTEN connection, waiting for hours:
    // keepalive probes find the dead connection (after the OS's probe count), and the pool or listener replaces it.
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    // Set at connection start-up, so every pooled connection is in the schema before its first query.
    ...(settings.schema ? { options: `-c search_path=${settings.schema}` } : {}),
  };
}

/**
 * A connection error as logged: pg-pool attaches the whole client to an idle connection's error (about 5 KB a line,
 * with the connection parameters and the backend's cancel key), which the log must not carry.
 */
function loggedError(err: Error): { error: string; code?: string } {
  return { error: err.message, code: (err as { code?: string }).code };
}

function openPool(settings: PostgresSettings, logger: Logger): pg.Pool {
  const pool = new (loadPg().Pool)({ ...clientConfig(settings, 'tollgate'), max: settings.poolSize ?? 10 });
  // An idle client losing its server must not crash the process; the pool replaces it on next use.
  pool.on('error', (err) => logger.warn(loggedError(err), 'idle PostgreSQL connection failed'));
  // A connection that breaks mid-query emits 'error' on its client; unheard, Node would end the process. The query
  // itself still rejects and the pool drops the client.
  pool.on('connect', (client) => client.on('error', (err) => logger.warn(loggedError(err), 'PostgreSQL connection failed')));
  return pool;
}

/** A query builder over a pool of its own, with no deadline of tollgate's (see openPostgresStore). */
export function openPostgres(settings: PostgresSettings, logger: Logger): Kysely<Tables> {
  return new Kysely<Tables>({ dialect: new PostgresDialect({ pool: openPool(settings, logger) }) });
}

/**
 * Two query builders over one pool: `store`, whose statements each have STATEMENT_DEADLINE_MS (see
 * withStatementDeadline), for the store's repositories; and `kysely`, without, for migrations and the modules whose
 * statements may rightly run long (analytics queries set a statement_timeout of their own). Destroying `kysely` ends
 * the pool.
 */
export function openPostgresStore(settings: PostgresSettings, logger: Logger): { kysely: Kysely<Tables>; store: Kysely<Tables> } {
  const pool = openPool(settings, logger);
  return {
    kysely: new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }),
    store: new Kysely<Tables>({ dialect: new PostgresDialect({ pool: withStatementDeadline(pool, STATEMENT_DEADLINE_MS) }) }),
  };
}

/**
 * `pool` as Kysely reads it, each statement answered within `ms` or failed with DatabaseTimeoutError. The connection
 * it was sent on is then ended (pg destroys the socket of a client ended with a query under way, and the pool drops a
 * client that is ending when it comes back), so the transaction it was part of never sends its COMMIT: PostgreSQL
 * rolls it back when it sees the connection go, or, when it cannot, once the transaction has been idle for
 * IDLE_IN_TRANSACTION_TIMEOUT_MS (transaction.ts). A connection left waiting instead held its place in the pool, and
 * its transaction open, as long as the silence lasted.
 */
function withStatementDeadline(pool: pg.Pool, ms: number): PostgresPool {
  const bounded = new WeakMap<pg.PoolClient, BoundedClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let view = bounded.get(client);
      if (!view) bounded.set(client, (view = new BoundedClient(client, ms)));
      return view;
    },
    // The pool is ended by the builder without deadline, which owns it.
    end: async () => {},
  };
}

/** One pooled client as withStatementDeadline hands it to Kysely. */
class BoundedClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  readonly #ms: number;

  constructor(client: pg.PoolClient, ms: number) {
    this.#client = client;
    this.#ms = ms;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sql: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Kysely passes a cursor only when its dialect has a cursor class, which this one has not.
    if (typeof sql !== 'string') throw new Error('streamed queries are not supported on the store connections');
    const client: PostgresPoolClient = this.#client;
    return statementWithin(this.#client, client.query<R>(sql, parameters ?? []), this.#ms);
  }

  release(destroy?: boolean): void {
    // Read at each call: the pool hands the client a new release function at each checkout.
    this.#client.release(destroy);
  }
}

async function statementWithin<T>(client: pg.PoolClient, answer: Promise<T>, ms: number): Promise<T> {
  try {
    return await withTimeout(answer, ms, 'a PostgreSQL statement');
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    void client.end().catch(() => {});
    throw new DatabaseTimeoutError(`PostgreSQL did not answer within ${ms} ms; the connection was closed and its transaction, if any, abandoned`, { cause: err });
  }
}
