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

export interface AccessTokenSource {
  save(token: IssuedAccessToken): Promise<void>;
  /** Undefined for an unknown or revoked token. Rejects when the store cannot answer. */
  find(tokenHash: string): AccessTokenGrant | undefined | Promise<AccessTokenGrant | undefined>;
}
