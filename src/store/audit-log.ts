// The audit log: one row per committed change, written in the same transaction as the change itself.
import { sql, type Kysely } from 'kysely';
import { deleteChunkRows, deleteInChunks, type DeletedChunk } from './chunked-delete.js';
import { decodeJson, decodeTimestamp, encodeJson, type JsonObject } from './codec.js';
import { paginate, type Page, type PageRequest } from './pagination.js';
import type { Tables } from './schema.js';
import type { Session } from './session.js';

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  resourceType: string;
  resourceName: string;
  detail: JsonObject;
}

export interface AuditFilter {
  resourceType?: string;
  resourceName?: string;
}

export async function insertAuditRow(
  db: Kysely<Tables>,
  entry: Omit<AuditEntry, 'id' | 'detail'> & { detail?: Record<string, unknown> },
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at: entry.at,
      actor: entry.actor,
      action: entry.action,
      resource_type: entry.resourceType,
      resource_name: entry.resourceName,
      detail: encodeJson(entry.detail ?? {}),
    })
    .execute();
}

export class AuditLog {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  /** Newest first. */
  list(filter: AuditFilter = {}, page: PageRequest = {}): Promise<Page<AuditEntry>> {
    let query = this.#session.db.selectFrom('audit_log').selectAll();
    if (filter.resourceType !== undefined) query = query.where('resource_type', '=', filter.resourceType);
    if (filter.resourceName !== undefined) {
      // Every name filter is on lower(resource_name), the expression audit_log_resource_name_idx (migration 7) holds.
      query = query.where(sql`lower(resource_name)`, '=', sql<string>`lower(${filter.resourceName})`);
      // A developer is known by its email in any case (as the admin API finds one), its rows by the email as typed;
      // any other name matches exactly.
      if (filter.resourceType !== 'developer') query = query.where('resource_name', '=', filter.resourceName);
    }
    return paginate(query, { columns: ['id'], kinds: { id: 'integer' }, direction: 'desc' }, page, (row) => ({
      id: Number(row.id),
      at: decodeTimestamp(row.at),
      actor: row.actor,
      action: row.action,
      resourceType: row.resource_type,
      resourceName: row.resource_name,
      detail: decodeJson<JsonObject>(row.detail),
    }));
  }

  /**
   * Deletes the rows written more than `keepMs` ago (GatewaySettings `audit.retention`), oldest first, a chunk of rows
   * by id at a time (chunked-delete.ts), until a chunk holds none that old or `stop()` says to; returns how many. Rows
   * are written in time order, so the sweep reads from the oldest id on and never the whole table (which has no index
   * on time); a row stamped out of order by a replica's clock (one ahead, one behind) is stepped over or taken with
   * its chunk. On PostgreSQL "ago" is by the database's clock, as for access tokens: replicas share the table.
   */
  deleteOlderThan(keepMs: number, stop?: () => boolean): Promise<number> {
    const { db, dialect } = this.#session.core;
    // Whole milliseconds: `1.1d` is 95040000.00000001 ms, which PostgreSQL refuses as a bigint.
    const ms = Math.round(keepMs);
    const cutoff = dialect === 'postgres' ? sql<string>`now() - (${ms}::bigint * interval '1 millisecond')` : new Date(Date.now() - ms).toISOString();
    const limit = deleteChunkRows(dialect);
    let after = 0;
    const chunk = async (): Promise<DeletedChunk> => {
      const rows = await db
        .selectFrom('audit_log')
        .select(['id', sql<number | boolean>`at < ${cutoff}`.as('old')])
        .where('id', '>', after)
        .orderBy('id')
        .limit(limit)
        .execute();
      if (rows.length === 0) return { deleted: 0, more: false };
      after = Number(rows[rows.length - 1].id);
      const ids = rows.filter((r) => r.old).map((r) => r.id);
      if (ids.length === 0) return { deleted: 0, more: false };
      const deleted = await db.deleteFrom('audit_log').where('id', 'in', ids).executeTakeFirst();
      return { deleted: Number(deleted.numDeletedRows), more: rows.length === limit };
    };
    return deleteInChunks(chunk, stop);
  }
}
