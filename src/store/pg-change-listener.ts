// Cross-replica change notification over PostgreSQL LISTEN/NOTIFY on a dedicated connection that reconnects.
import type pg from 'pg';
import { sql, type Kysely } from 'kysely';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import { CONNECT_TIMEOUT_MS, loadPg } from './postgres-connection.js';
import { RESOURCE_TYPES, type ChangeEvent } from './change-feed.js';
import { decodeChange, encodeChange, type ChangeMessage } from './change-message.js';

export const CHANGE_CHANNEL = 'tollgate_changes';

const MAX_RECONNECT_DELAY_MS = 5000;

/** How often the LISTEN connection proves it is alive (default); a probe unanswered within this counts as lost. */
export const DEFAULT_HEARTBEAT_MS = 5000;

/** Sends the notification inside the writing transaction: PostgreSQL delivers it only if that transaction commits. */
export async function notifyChange(conn: Kysely<any>, message: ChangeMessage, keyApps?: ReadonlyMap<string, string>): Promise<void> {
  await sql`select pg_notify(${CHANGE_CHANNEL}, ${encodeChange(message, keyApps)})`.execute(conn);
}

/** end() would wait for a silent server; the socket is dropped instead. */
function dropSocket(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

export class PgChangeListener {
  readonly #instanceId: string;
  readonly #config: pg.ClientConfig;
  readonly #schema: string;
  readonly #deliver: (event: ChangeEvent) => void;
  readonly #logger: Logger;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #heartbeatMs: number;
  #closed = false;

  constructor(
    config: pg.ClientConfig,
    target: { schema: string; instanceId: string },
    deliver: (event: ChangeEvent) => void,
    logger: Logger,
    heartbeatMs = DEFAULT_HEARTBEAT_MS,
  ) {
    this.#config = config;
    this.#heartbeatMs = heartbeatMs;
    this.#instanceId = target.instanceId;
    this.#schema = target.schema;
    this.#deliver = deliver;
    this.#logger = logger;
  }

  /** Resolves once LISTEN is active, so changes committed after it are never missed. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new (loadPg().Client)(this.#config);
    client.on('error', (err) => {
      this.#logger.warn({ err }, 'PostgreSQL change listener connection failed');
      this.#lost(client);
    });
    client.on('end', () => this.#lost(client));
    client.on('notification', (msg) => this.#receive(msg.payload));
    try {
      // connectionTimeoutMillis ends with the handshake, and the heartbeat starts only once LISTEN answers: a
      // connection gone silent in between left LISTEN, and with it start() or the reconnect chain, waiting forever.
      // LISTEN is part of opening this connection and gets the same time; then start() fails or the next reconnect
      // is scheduled.
      await client.connect();
      await withTimeout(client.query(`LISTEN ${CHANGE_CHANNEL}`), CONNECT_TIMEOUT_MS, 'LISTEN on the change listener connection');
    } catch (err) {
      dropSocket(client);
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#startHeartbeat(client);
  }

  /**
   * The LISTEN connection only ever receives, so a connection dropped without a reset (a NAT or load balancer
   * forgetting an idle flow, a partition) is never noticed: notifications stop for good and this replica serves a
   * stale snapshot (revoked keys keep working) indefinitely. A periodic query proves the connection alive; one left
   * unanswered for a whole interval counts as lost, which reconnects and reloads everything.
   */
  #startHeartbeat(client: pg.Client): void {
    clearInterval(this.#heartbeat);
    let inFlight: number | undefined;
    this.#heartbeat = setInterval(() => {
      if (this.#client !== client) return;
      if (inFlight !== undefined) {
        if (Date.now() - inFlight < this.#heartbeatMs) return;
        this.#logger.warn({ afterMs: Date.now() - inFlight }, 'PostgreSQL change listener connection stopped answering; reconnecting');
        dropSocket(client);
        this.#lost(client);
        return;
      }
      inFlight = Date.now();
      client.query('SELECT 1').then(
        () => (inFlight = undefined),
        () => {}, // 'error'/'end' handle a broken connection
      );
    }, Math.max(10, Math.floor(this.#heartbeatMs / 2)));
    this.#heartbeat.unref();
  }

  #lost(client: pg.Client): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = undefined;
    clearInterval(this.#heartbeat);
    client.end().catch(() => {});
    this.#reconnect(0);
  }

  #reconnect(attempt: number): void {
    const delay = Math.min(100 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);
    this.#timer = setTimeout(() => {
      this.#connect().then(
        // Notifications sent while disconnected are gone: tell listeners to reload everything.
        () => {
          if (!this.#closed) this.#deliver({ resourceTypes: [...RESOURCE_TYPES], origin: 'remote' });
        },
        (err: unknown) => {
          if (this.#closed) return;
          this.#logger.warn({ err, attempt }, 'PostgreSQL change listener reconnect failed');
          this.#reconnect(attempt + 1);
        },
      );
    }, delay);
    // Reconnecting alone must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  #receive(payload: string | undefined): void {
    const event = decodeChange(payload, this.#schema, this.#instanceId);
    if (event === 'malformed') this.#logger.warn({ payload }, 'ignoring malformed change notification');
    else if (event) this.#deliver(event);
  }
}
