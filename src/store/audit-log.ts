// The audit log: one row per committed change, written in the same transaction as the change itself.
import { sql, type Kysely } from 'kysely';
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
}
