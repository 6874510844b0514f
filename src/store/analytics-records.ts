// The analytics_records table: batched idempotent inserts, retention deletes, and typed access for the stats queries.
import { setImmediate as loopTurn } from 'node:timers/promises';
import { CompiledQuery, sql, type ColumnType, type Insertable, type Kysely, type Selectable } from 'kysely';
import { deleteChunk, type DeletedChunk } from './chunked-delete.js';
import type { Database } from './database.js';
import type { DialectName } from './database-url.js';
import type { Tables } from './schema.js';

/** bigint on PostgreSQL comes back as a string; integer on SQLite as a number. */
type Int64 = ColumnType<string | number, number, number>;
type NullableInt64 = ColumnType<string | number | null, number | null, number | null>;

export interface AnalyticsRecordsTable {
  id: string;
  at_ms: Int64;
  request_id: string;
  developer_id: string | null;
  developer_email: string | null;
  app_id: string | null;
  app_name: string | null;
  product: string | null;
  operation_set: string | null;
  key_id: string | null;
  operation: string | null;
  model: string | null;
  target_model: string | null;
  endpoint: string | null;
  priority: number;
  status: number | null;
  fault_code: string | null;
  latency_ms: number;
  ttft_ms: number | null;
  input_tokens: NullableInt64;
  output_tokens: NullableInt64;
  cached_tokens: NullableInt64;
  /** 1 when the tokens are tollgate's estimate (a stream cut before its usage), 0 when the model server reported them. */
  tokens_estimated: number;
  /** The id of the Responses API answer the model server stored (stored-responses.ts); null for any other request. */
  response_id: string | null;
  cache_hit: number;
  stream: number;
  bytes_in: Int64;
  bytes_out: Int64;
}

export type AnalyticsTables = Tables & { analytics_records: AnalyticsRecordsTable };
export type AnalyticsRecordRow = Insertable<AnalyticsRecordsTable>;

export type { DeletedChunk } from './chunked-delete.js';

/** Rows per SQLite INSERT: about a third of a millisecond of event loop each. */
const SQLITE_RUN = 64;

export class AnalyticsRecords {
  readonly dialect: DialectName;
  readonly #db: Kysely<AnalyticsTables>;

  /** A Database, or in the analytics writer thread just its own connection. */
  constructor(db: Pick<Database, 'dialect' | 'kysely'>) {
    this.dialect = db.dialect;
    this.#db = db.kysely.withTables<{ analytics_records: AnalyticsRecordsTable }>();
  }

  /** The query builder over analytics_records, for the stats queries. */
  get kysely(): Kysely<AnalyticsTables> {
    return this.#db;
  }

  /** SQL of the multi-row insert by row count: building 13,000 parameters through the query builder cost more than the insert. */
  readonly #insertSql = new Map<number, { sql: string; columns: (keyof AnalyticsRecordRow)[] }>();

  /**
   * Rows whose id is already stored are skipped, so replaying a batch is harmless. A full batch is one statement
   * (one round trip, one commit). SQLite on the event loop (`onEventLoop`) goes in runs of at most SQLITE_RUN rows
   * with the loop free in between: requests wait for one short run, not for the whole batch. Other sizes are split
   * into power-of-two runs, so only a handful of statement shapes are ever built and prepared.
   */
  async insert(rows: readonly AnalyticsRecordRow[], batchSize?: number, { onEventLoop = true } = {}): Promise<void> {
    const yielding = onEventLoop && this.dialect === 'sqlite';
    for (let at = 0; at < rows.length; ) {
      const left = rows.length - at;
      let n: number;
      if (yielding) n = left >= SQLITE_RUN ? SQLITE_RUN : 2 ** Math.floor(Math.log2(left));
      else n = left === batchSize ? left : 2 ** Math.floor(Math.log2(left));
      if (yielding && at > 0) await loopTurn();
      await this.#insertRun(rows.slice(at, at + n));
      at += n;
    }
  }

  async #insertRun(rows: readonly AnalyticsRecordRow[]): Promise<void> {
    let compiled = this.#insertSql.get(rows.length);
    if (!compiled) {
      const query = this.#db
        .insertInto('analytics_records')
        .values(rows as AnalyticsRecordRow[])
        .onConflict((oc) => oc.column('id').doNothing())
        .compile();
      compiled = { sql: query.sql, columns: Object.keys(rows[0]) as (keyof AnalyticsRecordRow)[] };
      this.#insertSql.set(rows.length, compiled);
    }
    const params: unknown[] = [];
    for (const row of rows) for (const c of compiled.columns) params.push(row[c]);
    await this.#db.executeQuery(CompiledQuery.raw(compiled.sql, params));
  }

  /**
   * Where the stored Responses API answer `id` was made: the first creation record naming it, with the
   * endpoint, app and model of that request and its usage (what a follow-up brings back in); undefined when none is
   * stored (or retention removed it).
   */
  async findResponse(id: string): Promise<Pick<Selectable<AnalyticsRecordsTable>, 'endpoint' | 'app_id' | 'model' | 'input_tokens' | 'output_tokens'> | undefined> {
    return this.#db
      .selectFrom('analytics_records')
      .select(['endpoint', 'app_id', 'model', 'input_tokens', 'output_tokens'])
      .where('response_id', '=', id)
      // One naming an app before one naming none: a record without the caller's identity (a gateway in front of the
      // one that checked the key) made it reachable by every app.
      .orderBy(sql`app_id is null`)
      // The first: an id a server gave again (to another app) does not change whose it is.
      .orderBy('at_ms', 'asc')
      .limit(1)
      .executeTakeFirst();
  }

  /**
   * Deletes a chunk of the records older than `beforeMs` (epoch ms): how many, and whether more may be left. Retention
   * runs chunk after chunk, so each statement holds its locks briefly however large the backlog; on SQLite the chunks
   * are smaller, since every other writer of the file (the admin API's, synchronously on the event loop) waits for them.
   */
  deleteChunkBefore(beforeMs: number): Promise<DeletedChunk> {
    return deleteChunk(this.dialect, (limit) =>
      this.#db.deleteFrom('analytics_records').where('id', 'in', this.#db.selectFrom('analytics_records').select('id').where('at_ms', '<', beforeMs).limit(limit)),
    );
  }

  /** Epoch ms of the newest stored record, or undefined when there is none. */
  async newestTime(): Promise<number | undefined> {
    const row = await this.#db.selectFrom('analytics_records').select(sql<string | number | null>`max(at_ms)`.as('newest')).executeTakeFirst();
    return row?.newest === null || row?.newest === undefined ? undefined : Number(row.newest);
  }

  /** Whether the database answers at all (tells a refused batch from an unreachable database). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#db);
  }
}
