// OAuth access tokens: the hashes of the tokens the data plane issues, with their key, scopes and expiry; revocation.
import { sql, type ColumnType, type Kysely, type SelectQueryBuilder } from 'kysely';
import { insertAuditRow } from './audit-log.js';
import { deleteChunk, deleteInChunks } from './chunked-delete.js';
import { decodeJson, encodeJson } from './codec.js';
import type { Database } from './database.js';
import type { DialectName } from './database-url.js';
import { ownedAppIds } from './owned-apps.js';
import type { JsonColumn, Tables } from './schema.js';
import type { IdentityOwner } from './session.js';
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
type TokenHashes = SelectQueryBuilder<TokenTables, 'oauth_access_tokens', { token_hash: string }>;

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

  /** Deletes every token issued to a key, a chunk at a time (see chunked-delete.ts); returns how many. */
  async revokeForKey(keyId: string, actor: string): Promise<number> {
    const revoked = await this.#deleteInChunks((q) => q.where('key_id', '=', keyId));
    if (revoked > 0) {
      await insertAuditRow(asBase(this.#db), { at: new Date().toISOString(), actor, action: 'revoke', resourceType: RESOURCE, resourceName: keyId, detail: { tokens: revoked } });
    }
    return revoked;
  }

  /**
   * Deletes, a chunk at a time, the tokens of a key, or of every key of an app or developer, that is about to be
   * deleted; returns how many. ON DELETE CASCADE would delete them with it in one statement: a busy key's day of
   * expired tokens held SQLite's event loop for seconds, and on PostgreSQL outran the store's statement deadline, so
   * such a key could not be deleted at all. The owner's own delete audits them (and cascades to any issued since).
   */
  deleteOwnedBy(owner: { keyId: string } | IdentityOwner): Promise<number> {
    const keyIds =
      'keyId' in owner
        ? [owner.keyId]
        : this.#db
            .selectFrom('credentials')
            .select('key_id')
            .where('app_id', 'in', ownedAppIds(asBase(this.#db), 'appId' in owner ? { appIds: [owner.appId], developerIds: [] } : { appIds: [], developerIds: [owner.developerId] }));
    return this.#deleteInChunks((q) => q.where('key_id', 'in', keyIds));
  }

  /**
   * Removes tokens that expired more than `keepMs` ago, a chunk at a time; returns how many. On PostgreSQL "ago" is by
   * the database's clock: every replica shares the table, and one replica whose clock ran a day ahead deleted every
   * replica's live tokens. A SQLite file has one host's clock.
   */
  deleteLongExpired(keepMs: number): Promise<number> {
    const cutoff = this.#dialect === 'postgres' ? sql<number>`(extract(epoch from now()) * 1000)::bigint - ${keepMs}` : Date.now() - keepMs;
    return this.#deleteInChunks((q) => q.where('expires_at_ms', '<', cutoff));
  }

  #deleteInChunks(which: (tokens: TokenHashes) => TokenHashes): Promise<number> {
    const chunk = (limit: number) =>
      this.#db.deleteFrom('oauth_access_tokens').where('token_hash', 'in', which(this.#db.selectFrom('oauth_access_tokens').select('token_hash')).limit(limit));
    return deleteInChunks(() => deleteChunk(this.#dialect, chunk));
  }

  #write<T>(fn: (db: Kysely<TokenTables>, at: string) => Promise<T>): Promise<T> {
    const at = new Date().toISOString();
    return inTransaction(this.#db, this.#dialect, 'write', (conn) => fn(conn, at));
  }
}
