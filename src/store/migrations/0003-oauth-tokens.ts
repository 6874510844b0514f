// Migration 3: oauth_access_tokens, the OAuth access tokens issued by the data plane (their hashes only).
import type { Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import { columnTypes, type Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('oauth_access_tokens')
    // SHA-256 hex of the token: a stolen table lets nobody call the API.
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    // Deleting a key deletes its tokens; revoking it stops them through the snapshot's key status.
    .addColumn('key_id', 'text', (c) => c.notNull().references('credentials.key_id').onDelete('cascade'))
    .addColumn('scopes', t.json, (c) => c.notNull())
    // Epoch milliseconds, compared with the clock on every request.
    .addColumn('issued_at_ms', t.bigint, (c) => c.notNull())
    .addColumn('expires_at_ms', t.bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth_access_tokens_key_idx').on('oauth_access_tokens').column('key_id').execute();
  await db.schema.createIndex('oauth_access_tokens_expiry_idx').on('oauth_access_tokens').column('expires_at_ms').execute();
}

export const oauthTokens: Migration = { id: 3, name: 'oauth-tokens', up };
