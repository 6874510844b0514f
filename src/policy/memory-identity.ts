// An IdentitySource held in a Map: for tests and embedding; the store's snapshot provides the real one.
import { hashKey } from '../store/keys.js';
import type { AccessTokenSource } from './access-token-source.js';
import type { GrantStatus, IdentitySource, KeyRecord, OperationSetGrant } from './identity.js';
import { operationSetsByProduct } from './operation-set.js';

export interface MemoryKeyInput {
  /** The plain key; only its hash is kept. */
  key: string;
  /** The plain consumer secret (the OAuth client secret); only its hash is kept. */
  secret?: string;
  keyId?: string;
  status?: GrantStatus;
  expiresAt?: number | null;
  appId?: string;
  appName?: string;
  appStatus?: GrantStatus;
  developerId?: string;
  developerEmail?: string;
  developerStatus?: 'active' | 'inactive';
  /** In the app's order; a bare name is an approved grant. */
  products: (string | { name: string; status: GrantStatus; scopes?: string[] })[];
}

/**
 * @example
 * const ids = new MemoryIdentitySource([{ name: 'chat', spec: { apiProductRefs: [{ name: 'gold' }] } }]);
 * ids.add({ key: 'tg_abc', products: ['gold'] });
 */
export class MemoryIdentitySource implements IdentitySource {
  readonly #keys = new Map<string, KeyRecord>();
  /** Set by tests of OAuthV2. */
  accessTokens?: AccessTokenSource;
  readonly #sets: Map<string, OperationSetGrant[]>;

  /** `operationSets`: APIOperationSet specs by name, as declared. */
  constructor(operationSets: readonly { name: string; spec: unknown }[] = []) {
    this.#sets = operationSetsByProduct(operationSets);
  }

  add(input: MemoryKeyInput): KeyRecord {
    const appId = input.appId ?? `app-${this.#keys.size + 1}`;
    const record: KeyRecord = {
      keyId: input.keyId ?? `key_${this.#keys.size + 1}`,
      ...(input.secret !== undefined && { secretHash: hashKey(input.secret) }),
      status: input.status ?? 'approved',
      expiresAt: input.expiresAt ?? null,
      appId,
      appName: input.appName ?? appId,
      appStatus: input.appStatus ?? 'approved',
      developerId: input.developerId ?? `dev-${appId}`,
      developerEmail: input.developerEmail ?? `${appId}@example.com`,
      developerStatus: input.developerStatus ?? 'active',
      products: input.products.map((p) => {
        const { name, status, scopes } = typeof p === 'string' ? { name: p, status: 'approved' as const, scopes: [] } : p;
        return { name, status, operationSets: this.#sets.get(name) ?? [], scopes: scopes ?? [] };
      }),
    };
    this.#keys.set(hashKey(input.key), record);
    return record;
  }

  findKeyByHash(hash: string): KeyRecord | undefined {
    return this.#keys.get(hash);
  }
}
