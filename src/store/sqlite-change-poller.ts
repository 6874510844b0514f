// Cross-process change notification on one SQLite file: what PostgreSQL's NOTIFY does for replicas there. Every
// committed change writes a change_log row in its transaction (Session.transaction, logChange); each process asks,
// every POLL_MS, whether another connection has committed anything (PRAGMA data_version, read from the WAL index
// in shared memory: no I/O), and only then reads the rows after the last it saw.
import { sql, type Kysely } from 'kysely';
import type { Logger } from '../lib/logger.js';
import { RESOURCE_TYPES, type ChangeEvent } from './change-feed.js';
import { decodeChange, encodeChange, type ChangeMessage } from './change-message.js';
import type { Tables } from './schema.js';

/** How often the file is asked: a key revoked through one process is refused by the others within about this. */
export const POLL_MS = 100;

/**
 * Rows kept: a process that has fallen further behind (stopped in a debugger, its event loop held for seconds while
 * another took a policy's KVM writes per request) finds a gap, and reads everything again.
 */
export const KEEP_ROWS = 10_000;

/** Rows read per poll; past them, reading everything again is cheaper than replaying so many changes one by one. */
const MAX_ROWS_PER_POLL = 1_000;

/** Written in the transaction of the change, as notifyChange sends it on PostgreSQL: in the file exactly when the change is. */
export async function logChange(conn: Kysely<Tables>, message: ChangeMessage, keyApps?: ReadonlyMap<string, string>): Promise<void> {
  const { seq } = await conn.insertInto('change_log').values({ origin: message.origin, payload: encodeChange(message, keyApps) }).returning('seq').executeTakeFirstOrThrow();
  if (seq > KEEP_ROWS) await conn.deleteFrom('change_log').where('seq', '<=', seq - KEEP_ROWS).execute();
}

export class SqliteChangePoller {
  readonly #db: Kysely<Tables>;
  readonly #instanceId: string;
  readonly #deliver: (event: ChangeEvent) => void;
  readonly #logger: Logger;
  readonly #pollMs: number;
  #timer: NodeJS.Timeout | undefined;
  #version = -1;
  #last = 0;
  #polling: Promise<void> | undefined;
  #failing = false;

  constructor(db: Kysely<Tables>, instanceId: string, deliver: (event: ChangeEvent) => void, logger: Logger, pollMs = POLL_MS) {
    this.#db = db;
    this.#instanceId = instanceId;
    this.#deliver = deliver;
    this.#logger = logger;
    this.#pollMs = pollMs;
  }

  /** From the newest change now in the file: the snapshot loaded after this has every change before it. */
  async start(): Promise<void> {
    this.#version = await this.#dataVersion();
    this.#last = await this.#newest();
    this.#timer = setInterval(() => {
      this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    }, this.#pollMs);
    // Watching for changes alone must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#polling;
  }

  /** The number of the newest change in the file (0 when there is none). */
  async #newest(): Promise<number> {
    const row = await this.#db.selectFrom('change_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  async #dataVersion(): Promise<number> {
    const { rows } = await sql<{ data_version: number }>`pragma data_version`.execute(this.#db);
    return Number(rows[0]?.data_version);
  }

  async #poll(): Promise<void> {
    try {
      // Moves when another connection commits (this process's own writes leave it as it is): usage records from the
      // analytics writer thread too, so most polls that read rows find none of another process.
      const version = await this.#dataVersion();
      if (version === this.#version) return;
      this.#version = version;
      const rows = await this.#db.selectFrom('change_log').select(['seq', 'origin', 'payload']).where('seq', '>', this.#last).orderBy('seq').limit(MAX_ROWS_PER_POLL + 1).execute();
      if (this.#failing) this.#logger.info('changes made by other processes on the SQLite file are read again');
      this.#failing = false;
      if (rows.length === 0) return;
      // Rows pruned before they were read (a gap), or more than are worth replaying: everything is read again, which
      // takes in every change up to the newest now in the file.
      if (rows[0].seq !== this.#last + 1 || rows.length > MAX_ROWS_PER_POLL) {
        this.#last = await this.#newest();
        return this.#deliver({ resourceTypes: [...RESOURCE_TYPES], origin: 'remote' });
      }
      this.#last = rows[rows.length - 1].seq;
      for (const row of rows) {
        if (row.origin === this.#instanceId) continue;
        const event = decodeChange(row.payload, 'main', this.#instanceId);
        // A row this version cannot read (written by a newer one) may have changed anything.
        if (event === 'malformed') this.#deliver({ resourceTypes: [...RESOURCE_TYPES], origin: 'remote' });
        else if (event) this.#deliver(event);
      }
    } catch (err) {
      // The file unreadable for a moment (SQLITE_BUSY past the busy timeout, a full disk during a checkpoint): the
      // version is asked again next time, and the rows after the last read are still there then.
      this.#version = -1;
      if (!this.#failing) this.#logger.warn({ err }, 'cannot read the changes made by other processes on the SQLite file; retrying');
      this.#failing = true;
    }
  }
}
