// The API-management snapshot the engine reads on the hot path: credentials by key hash, each with its app,
// developer and product grants already resolved, so a request costs one map lookup.
import type { CountOn, TimeUnit } from '../config/apim-kinds.js';
import type { AccessTokenSource } from './access-token-source.js';
import type { WindowAt } from './quota-window.js';

export type GrantStatus = 'approved' | 'pending' | 'revoked';

/** A product quota with its windows compiled (calendar-aligned, UTC). */
export interface CompiledQuota {
  limit: number;
  interval: number;
  timeUnit: TimeUnit;
  windowAt: WindowAt;
}

export interface CompiledTokenQuota extends CompiledQuota {
  countOn: CountOn;
}

/** One operation set as the hot path uses it: matchers and limits compiled once. */
export interface OperationSetGrant {
  name: string;
  /** Whether the set's restOperations grant this method and path (true for every request when it lists none). */
  matches(method: string, path: string): boolean;
  /** The models granted; null grants every model. */
  models: ReadonlySet<string> | null;
  /** The InferenceObjectives a request may name (x-gateway-inference-objective); null allows any. */
  objectives: ReadonlySet<string> | null;
  /** Requests per app per interval; null when the set has none. */
  quota: CompiledQuota | null;
  llmTokenQuota: CompiledTokenQuota | null;
}

export interface ProductGrant {
  name: string;
  /** The key's approval for this product (a manual product starts pending). Only approved grants entitle. */
  status: GrantStatus;
  /** A product without operation sets grants nothing. */
  operationSets: readonly OperationSetGrant[];
  /** The OAuth scopes the product offers (APIProduct `scopes`): an access token may ask for these only. */
  scopes?: readonly string[];
}

export interface KeyRecord {
  keyId: string;
  /** SHA-256 hex of the consumer secret (the OAuth client secret); absent for a key issued without one. */
  secretHash?: string;
  status: GrantStatus;
  /** Epoch milliseconds; null never expires. */
  expiresAt: number | null;
  appId: string;
  appName: string;
  appStatus: GrantStatus;
  developerId: string;
  developerEmail: string;
  developerStatus: 'active' | 'inactive';
  /** In the app's order: the first product whose operation set covers a request decides. */
  products: readonly ProductGrant[];
}

/** Implemented by the store's in-memory snapshot (and MemoryIdentitySource in tests). Must answer synchronously. */
export interface IdentitySource {
  /** The credential whose key hashes (SHA-256 hex, the store's hashKey) to `hash`. */
  findKeyByHash(hash: string): KeyRecord | undefined;
  /** Where OAuth access tokens are kept (OAuthV2); absent when no store backs the engine. */
  accessTokens?: AccessTokenSource;
}
