// For tests of OAuth token-table housekeeping at volume: many token rows for one key, written by one statement.
import { sql } from 'kysely';
import type { Database } from './database.js';

/** Inserts `count` tokens of `keyId` expiring at `expiresAt` (epoch ms); their hashes start with `prefix`. */
export async function seedTokens(db: Database, keyId: string, count: number, expiresAt: number, prefix: string): Promise<void> {
  const issuedAt = expiresAt - 3_600_000;
  const query =
    db.dialect === 'postgres'
      ? sql`insert into oauth_access_tokens (token_hash, key_id, scopes, issued_at_ms, expires_at_ms)
            select ${prefix}::text || i, ${keyId}, '[]'::jsonb, ${issuedAt}::bigint, ${expiresAt}::bigint from generate_series(1, ${count}::int) as i`
      : sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${count})
            insert into oauth_access_tokens (token_hash, key_id, scopes, issued_at_ms, expires_at_ms)
            select ${prefix} || i, ${keyId}, '[]', ${issuedAt}, ${expiresAt} from n`;
  await query.execute(db.kysely);
}

/** How many token rows `keyId` has. */
export async function tokenCount(db: Database, keyId: string): Promise<number> {
  const { rows } = await sql<{ n: string | number }>`select count(*) as n from oauth_access_tokens where key_id = ${keyId}`.execute(db.kysely);
  return Number(rows[0].n);
}
