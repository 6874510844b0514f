// OAuth access tokens: the hashes of the tokens the data plane issues, with their key, scopes and expiry; revocation.
import type { ColumnType, Kysely } from 'kysely';
import { insertAuditRow } from './audit-log.js';
import { decodeJson, encodeJson } from './codec.js';
import type { Database } from './database.js';
import type { DialectName } from './database-url.js';
import type { JsonColumn, Tables } from './schema.js';
import { inTransaction } from './transaction.js';

/** bigint on PostgreSQL comes back as a string; integer on SQLite as a number. */
type Int64 = ColumnType<string | number, number, number>;

export interface OAuthAccessTokensTable {
  token_hash: string;
  key_id: string;
  scopes: JsonColumn;
  issued_at_ms: Int64;
  expires_at_ms: Int64;
}

type TokenTables = Tables & { oauth_access_tokens: OAuthAccessTokensTable };

export interface AccessTokenInput {
  /** SHA-256 hex of the token (the store's hashKey); the token itself is never stored. */
  tokenHash: string;
  keyId: string;
  scopes: readonly string[];
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
}

export interface StoredAccessToken {
  keyId: string;
  /** The credential's key hash, which is how the identity snapshot finds the key. */
  keyHash: string;
  scopes: string[];
  issuedAt: number;
  expiresAt: number;
}

const RESOURCE = 'accesstoken';

/** The audit writer is typed with the base tables; this connection serves them too (TokenTables extends Tables). */
const asBase = (db: Kysely<TokenTables>) => db as unknown as Kysely<Tables>;

export class AccessTokens {
  readonly #db: Kysely<TokenTables>;
  readonly #dialect: DialectName;

  constructor(db: Database) {
    this.#db = db.kysely.withTables<{ oauth_access_tokens: OAuthAccessTokensTable }>();
    this.#dialect = db.dialect;
  }

  /** Hot path (the token endpoint): one insert, no audit row and no change event, so issuing never reloads snapshots. */
  async insert(t: AccessTokenInput): Promise<void> {
    await this.#db
      .insertInto('oauth_access_tokens')
      .values({ token_hash: t.tokenHash, key_id: t.keyId, scopes: encodeJson(t.scopes), issued_at_ms: t.issuedAt, expires_at_ms: t.expiresAt })
      .execute();
  }

  async find(tokenHash: string): Promise<StoredAccessToken | undefined> {
    const row = await this.#db
      .selectFrom('oauth_access_tokens as t')
      .innerJoin('credentials as c', 'c.key_id', 't.key_id')
      .select(['t.key_id', 'c.key_hash', 't.scopes', 't.issued_at_ms', 't.expires_at_ms'])
      .where('t.token_hash', '=', tokenHash)
      .executeTakeFirst();
    return (
      row && {
        keyId: row.key_id,
        keyHash: row.key_hash,
        scopes: decodeJson<string[]>(row.scopes),
        issuedAt: Number(row.issued_at_ms),
        expiresAt: Number(row.expires_at_ms),
      }
    );
  }

  /** Deletes one token; false when there was none. The audit row names the key, never the token. */
  revoke(tokenHash: string, actor: string): Promise<boolean> {
    return this.#write(async (db, at) => {
      const deleted = await db.deleteFrom('oauth_access_tokens').where('token_hash', '=', tokenHash).returning('key_id').executeTakeFirst();
      if (!deleted) return false;
      await insertAuditRow(asBase(db), { at, actor, action: 'revoke', resourceType: RESOURCE, resourceName: deleted.key_id, detail: { tokens: 1 } });
      return true;
    });
  }

  /** Deletes every token issued to a key; returns how many. */
  revokeForKey(keyId: string, actor: string): Promise<number> {
    return this.#write(async (db, at) => {
      const deleted = await db.deleteFrom('oauth_access_tokens').where('key_id', '=', keyId).returning('token_hash').execute();
      if (deleted.length > 0) {
        await insertAuditRow(asBase(db), { at, actor, action: 'revoke', resourceType: RESOURCE, resourceName: keyId, detail: { tokens: deleted.length } });
      }
      return deleted.length;
    });
  }

  /** Removes tokens that expired before `beforeMs` (epoch ms); returns how many. */
  async deleteExpired(beforeMs: number): Promise<number> {
    const result = await this.#db.deleteFrom('oauth_access_tokens').where('expires_at_ms', '<', beforeMs).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  #write<T>(fn: (db: Kysely<TokenTables>, at: string) => Promise<T>): Promise<T> {
    const at = new Date().toISOString();
    return inTransaction(this.#db, this.#dialect, 'write', (conn) => fn(conn, at));
  }
}
