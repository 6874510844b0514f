// PostgreSQL connection settings shared by the query pool and the LISTEN client.
import type pg from 'pg';
import { lazyRequire } from '../lib/lazy-require.js';
import { Kysely, PostgresDialect } from 'kysely';
import type { Logger } from '../lib/logger.js';
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

export function openPostgres(settings: PostgresSettings, logger: Logger): Kysely<Tables> {
  const pool = new (loadPg().Pool)({ ...clientConfig(settings, 'tollgate'), max: settings.poolSize ?? 10 });
  // An idle client losing its server must not crash the process; the pool replaces it on next use.
  pool.on('error', (err) => logger.warn(loggedError(err), 'idle PostgreSQL connection failed'));
  // A connection that breaks mid-query emits 'error' on its client; unheard, Node would end the process. The query
  // itself still rejects and the pool drops the client.
  pool.on('connect', (client) => client.on('error', (err) => logger.warn(loggedError(err), 'PostgreSQL connection failed')));
  return new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
}
