// A shared semantic index on PostgreSQL (the gateway's own database): rows of (scope, entry key, binary entry, expiry)
// in an UNLOGGED table (a cache need not survive a crash), scanned in the gateway. Each lookup reads the scope's live
// rows, so keep scopes to a few thousand entries; the table is created on first use.
import { sql, type Kysely, type QueryResult, type RawBuilder } from 'kysely';
import { TimeoutError, withTimeout } from '../../lib/with-timeout.js';
import { CACHE_COMMAND_TIMEOUT_MS, CACHE_PURGE_TIMEOUT_MS, CacheStoreUnavailableError } from '../caches/cache-store.js';
import type { VectorIndex, VectorMatch } from './vector-index.js';
import { encodeEntry, entrySimilarity, entryValue } from './vector-index.js';

const TABLE = 'tollgate_semantic_cache';
/** The table's last object made: when it is there, so is the rest. */
const KEY_INDEX = `${TABLE}_key`;
const SWEEP_EVERY = 200;

export interface PostgresVectorIndexOptions {
  /**
   * A builder whose statements have a deadline of their own, after which their connection is ended (the gateway's
   * Database.boundedKysely): the index gives up on a statement long before, and a connection gone silent would
   * otherwise hold its place in the pool, and the next statement sent on it, until TCP keepalive noticed.
   */
  db: Kysely<any>;
  /** Put before every scope (a cache resource and its namespace), so one resource's rows can be found, and deleted, alone. */
  scopePrefix?: string;
  maxEntriesPerScope?: number;
  /** Longest wait for one lookup or store (default 250 ms), as on Redis: a lookup that takes longer is a miss. */
  commandTimeoutMs?: number;
  now?: () => number;
}

interface Row {
  entry: Buffer;
}

export class PostgresVectorIndex implements VectorIndex {
  readonly #db: Kysely<any>;
  readonly #prefix: string;
  readonly #maxEntries: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #ready: Promise<void> | null = null;
  #adds = 0;

  constructor(opts: PostgresVectorIndexOptions) {
    this.#db = opts.db;
    this.#prefix = opts.scopePrefix ?? '';
    this.#maxEntries = opts.maxEntriesPerScope ?? 2000;
    this.#timeoutMs = opts.commandTimeoutMs ?? CACHE_COMMAND_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
  }

  async search(name: string, vector: Float32Array, threshold: number): Promise<VectorMatch | undefined> {
    const scope = this.#prefix + name;
    const rows = await this.#run((run) =>
      run(sql<Row>`SELECT entry FROM ${sql.table(TABLE)} WHERE scope = ${scope} AND expires_at > ${this.#now()} ORDER BY id DESC LIMIT ${this.#maxEntries}`),
    );
    let best: Buffer | undefined;
    let bestSim = threshold;
    for (const { entry } of rows.rows) {
      const sim = entrySimilarity(entry, vector);
      if (sim >= bestSim) {
        bestSim = sim;
        best = entry;
      }
    }
    return best && { similarity: bestSim, value: entryValue(best) };
  }

  async add(name: string, key: string, vector: Float32Array, value: Buffer, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    const scope = this.#prefix + name;
    const now = this.#now();
    await this.#run(async (run) => {
      // The key's row is replaced, with a new id: the cap keeps the newest, and a renewed answer is new.
      await run(sql`INSERT INTO ${sql.table(TABLE)} (scope, entry_key, entry, expires_at) VALUES (${scope}, ${key}, ${encodeEntry(vector, value, now + ttlMs)}, ${now + ttlMs})
        ON CONFLICT (scope, entry_key) DO UPDATE SET id = DEFAULT, entry = EXCLUDED.entry, expires_at = EXCLUDED.expires_at`);
      // The scope's own expired rows and those beyond the cap; other scopes clean up on their own writes.
      await run(sql`DELETE FROM ${sql.table(TABLE)} WHERE scope = ${scope} AND (expires_at <= ${now} OR id <= (
        SELECT id FROM ${sql.table(TABLE)} WHERE scope = ${scope} ORDER BY id DESC OFFSET ${this.#maxEntries} LIMIT 1))`);
      // Now and then the expired rows of every scope, so scopes nobody writes to any more do not linger.
      if (++this.#adds % SWEEP_EVERY === 0) await run(sql`DELETE FROM ${sql.table(TABLE)} WHERE expires_at <= ${now}`);
    });
  }

  async close(): Promise<void> {}

  /** `work` after the table is there, on one connection within the command timeout; every failure is the store's outage. */
  #run<T>(work: (run: Run) => Promise<T>): Promise<T> {
    return orUnavailable(() =>
      onConnectionWithin(this.#db, this.#timeoutMs, 'a PostgreSQL semantic cache statement', async (run) => {
        await this.#table(run);
        return work(run);
      }),
    );
  }

  /** Made by the first statement of the process to need it; concurrent ones wait for it. */
  #table(run: Run): Promise<void> {
    this.#ready ??= (async () => {
      const made = await run(sql<{ made: boolean }>`SELECT to_regclass(${KEY_INDEX}) IS NOT NULL AS made`);
      if (made.rows[0]?.made) return;
      await run(sql`CREATE UNLOGGED TABLE IF NOT EXISTS ${sql.table(TABLE)} (
        id bigserial PRIMARY KEY, scope text NOT NULL, entry_key text, entry bytea NOT NULL, expires_at double precision NOT NULL)`);
      // A table made before entries had keys: its rows keep none, and expire as they would have.
      await run(sql`ALTER TABLE ${sql.table(TABLE)} ADD COLUMN IF NOT EXISTS entry_key text`);
      await run(sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`${TABLE}_scope`)} ON ${sql.table(TABLE)} (scope, id)`);
      await run(sql`CREATE UNIQUE INDEX IF NOT EXISTS ${sql.raw(KEY_INDEX)} ON ${sql.table(TABLE)} (scope, entry_key)`);
    })().catch((err: unknown) => {
      this.#ready = null;
      throw err;
    });
    return this.#ready;
  }
}

/** Sends a statement on the connection the work was given. */
type Run = <R>(query: RawBuilder<R>) => Promise<QueryResult<R>>;

/**
 * `work` on one connection of `db`, waited for at most `ms` (a free connection included): past it, TimeoutError, and
 * the work's statements not yet sent are never sent. One under way is left to `db`'s own deadline: answered late, its
 * connection goes back to the pool (a slow server is no reason to open another); unanswered, it is ended.
 */
function onConnectionWithin<T>(db: Kysely<any>, ms: number, what: string, work: (run: Run) => Promise<T>): Promise<T> {
  let late = false;
  const done = db.connection().execute((conn) =>
    work(async (query) => {
      if (late) throw new TimeoutError(`${what} was given up before it was sent`);
      return query.execute(conn);
    }),
  );
  return withTimeout(done, ms, what).catch((err: unknown) => {
    if (err instanceof TimeoutError) late = true;
    throw err;
  });
}

async function orUnavailable<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new CacheStoreUnavailableError(`PostgreSQL is unavailable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Deletes the rows of every scope starting with `prefix` (a cache resource's, whatever their namespace); resolves to
 * how many. No table yet is nothing to delete. `db` as PostgresVectorIndexOptions.db.
 * @throws CacheStoreUnavailableError when PostgreSQL cannot answer, or not within CACHE_PURGE_TIMEOUT_MS.
 */
export async function deleteScopesUnder(db: Kysely<any>, prefix: string): Promise<number> {
  return orUnavailable(() =>
    onConnectionWithin(db, CACHE_PURGE_TIMEOUT_MS, 'a PostgreSQL semantic cache purge', async (run) => {
      const exists = await run(sql<{ t: string | null }>`SELECT to_regclass(${TABLE}) AS t`);
      if (!exists.rows[0]?.t) return 0;
      const deleted = await run(sql`DELETE FROM ${sql.table(TABLE)} WHERE starts_with(scope, ${prefix})`);
      return Number(deleted.numAffectedRows ?? 0);
    }),
  );
}
