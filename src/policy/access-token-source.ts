// Where OAuth access tokens live, as the OAuthV2 policy sees it: save what the token endpoint issues, find a
// presented token by its hash. The store's table is shared by every replica; a short cache keeps the hot path in memory.

/** A token as issued: only its hash leaves the token endpoint. */
export interface IssuedAccessToken {
  /** SHA-256 hex of the token (the store's hashKey). */
  tokenHash: string;
  keyId: string;
  /** The key's hash, so the issuing replica can answer for the token without a lookup. */
  keyHash: string;
  scopes: readonly string[];
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
}

/** What a presented token grants: the key it was issued to (by key hash, as the identity snapshot indexes keys). */
export interface AccessTokenGrant {
  keyHash: string;
  scopes: readonly string[];
  /** Epoch milliseconds. */
  expiresAt: number;
}

/**
 * How long a request waits for the token table (a lookup, or the token endpoint's save) before it fails with 500
 * extension_failed. Tokens are the one credential read from the database on the request path (keys are in the
 * snapshot): a table that stalled held every request bearing one, and every token request, until the OS gave up on
 * the connection, minutes later. One indexed read or insert takes milliseconds; the bound leaves room for a wait
 * behind the admin API and analytics in the shared pool.
 */
export const TOKEN_TABLE_TIMEOUT_MS = 2000;

export interface AccessTokenSource {
  save(token: IssuedAccessToken): Promise<void>;
  /** Undefined for an unknown or revoked token. Rejects when the store cannot answer. */
  find(tokenHash: string): AccessTokenGrant | undefined | Promise<AccessTokenGrant | undefined>;
}
