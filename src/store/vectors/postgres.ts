// A shared semantic index on PostgreSQL (the gateway's own database): rows of (scope, binary entry, expiry) in an
// UNLOGGED table (a cache need not survive a crash), scanned in the gateway. Each lookup reads the scope's live rows,
// so keep scopes to a few thousand entries; the table is created on first use.
import { sql, type Kysely } from 'kysely';
import { CacheStoreUnavailableError } from '../caches/cache-store.js';
import type { VectorIndex, VectorMatch } from './vector-index.js';
import { encodeEntry, entrySimilarity, entryValue } from './vector-index.js';

const TABLE = 'tollgate_semantic_cache';
const SWEEP_EVERY = 200;

export interface PostgresVectorIndexOptions {
  db: Kysely<any>;
  /** Put before every scope (a cache resource and its namespace), so one resource's rows can be found, and deleted, alone. */
  scopePrefix?: string;
  maxEntriesPerScope?: number;
  now?: () => number;
}

interface Row {
  entry: Buffer;
}

export class PostgresVectorIndex implements VectorIndex {
  readonly #db: Kysely<any>;
  readonly #prefix: string;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #ready: Promise<void> | null = null;
  #adds = 0;

  constructor(opts: PostgresVectorIndexOptions) {
    this.#db = opts.db;
    this.#prefix = opts.scopePrefix ?? '';
    this.#maxEntries = opts.maxEntriesPerScope ?? 2000;
    this.#now = opts.now ?? Date.now;
  }

  async search(name: string, vector: Float32Array, threshold: number): Promise<VectorMatch | undefined> {
    const scope = this.#prefix + name;
    await this.#table();
    const rows = await orUnavailable(() =>
      sql<Row>`SELECT entry FROM ${sql.table(TABLE)} WHERE scope = ${scope} AND expires_at > ${this.#now()} ORDER BY id DESC LIMIT ${this.#maxEntries}`.execute(this.#db),
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

  async add(name: string, vector: Float32Array, value: Buffer, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    const scope = this.#prefix + name;
    await this.#table();
    const now = this.#now();
    await orUnavailable(async () => {
      await sql`INSERT INTO ${sql.table(TABLE)} (scope, entry, expires_at) VALUES (${scope}, ${encodeEntry(vector, value, now + ttlMs)}, ${now + ttlMs})`.execute(this.#db);
      // The scope's own expired rows and those beyond the cap; other scopes clean up on their own writes.
      await sql`DELETE FROM ${sql.table(TABLE)} WHERE scope = ${scope} AND (expires_at <= ${now} OR id <= (
        SELECT id FROM ${sql.table(TABLE)} WHERE scope = ${scope} ORDER BY id DESC OFFSET ${this.#maxEntries} LIMIT 1))`.execute(this.#db);
      // Now and then the expired rows of every scope, so scopes nobody writes to any more do not linger.
      if (++this.#adds % SWEEP_EVERY === 0) await sql`DELETE FROM ${sql.table(TABLE)} WHERE expires_at <= ${now}`.execute(this.#db);
    });
  }

  async close(): Promise<void> {}

  #table(): Promise<void> {
    this.#ready ??= orUnavailable(async () => {
      await sql`CREATE UNLOGGED TABLE IF NOT EXISTS ${sql.table(TABLE)} (
        id bigserial PRIMARY KEY, scope text NOT NULL, entry bytea NOT NULL, expires_at double precision NOT NULL)`.execute(this.#db);
      await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`${TABLE}_scope`)} ON ${sql.table(TABLE)} (scope, id)`.execute(this.#db);
    }).catch((err: unknown) => {
      this.#ready = null;
      throw err;
    });
    return this.#ready;
  }
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
 * how many. No table yet is nothing to delete.
 * @throws CacheStoreUnavailableError when PostgreSQL cannot answer.
 */
export async function deleteScopesUnder(db: Kysely<any>, prefix: string): Promise<number> {
  return orUnavailable(async () => {
    const exists = await sql<{ t: string | null }>`SELECT to_regclass(${TABLE}) AS t`.execute(db);
    if (!exists.rows[0]?.t) return 0;
    const deleted = await sql`DELETE FROM ${sql.table(TABLE)} WHERE starts_with(scope, ${prefix})`.execute(db);
    return Number(deleted.numAffectedRows ?? 0);
  });
}
