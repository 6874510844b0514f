// Public API of the storage layer: the database Store, its records, key helpers and the counter stores.
export { openDatabase, type OpenDatabaseOptions } from './open-database.js';
export { Database, StoreView } from './database.js';
export { DEFAULT_DATABASE_URL, isMemoryDatabase, parseDatabaseUrl, type DatabaseTarget, type DialectName } from './database-url.js';
export type { Tables } from './schema.js';
export { ConflictError, DatabaseConfigError, DatabaseOpenError, InvalidPageTokenError, isDatabaseUnavailable, NotFoundError, StoreError } from './errors.js';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, pageOfList, type Page, type PageRequest } from './pagination.js';
export { IDENTITY_TYPES, RESOURCE_TYPES, type ChangeEvent, type ChangeListener, type IdentityRefs, type KvmEntryRef, type ResourceType } from './change-feed.js';
export { CHANGE_CHANNEL } from './pg-change-listener.js';
export type { IdentityRows, PolicyRows, Snapshot } from './snapshot.js';
export type { JsonObject, JsonValue } from './codec.js';
export { isStorableText, unstorableTextPaths, UNSTORABLE_TEXT_MESSAGE } from './codec.js';
export type { Applied, ApplyOutcome, Attribute, Owner } from './common-types.js';
export type { ApiProduct, ApiProductContent, ApiProductInput, ApiProductPatch, ApiProducts, ApprovalType, QuotaSpec } from './api-products.js';
export type { OperationSet, OperationSetInput, OperationSets } from './operation-sets.js';
export type { Manifest, ManifestInput, Manifests } from './manifests.js';
export type { Developer, DeveloperInput, DeveloperPatch, Developers, DeveloperStatus } from './developers.js';
export type { App, AppInput, AppPatch, Apps, AppStatus } from './apps.js';
export type {
  ApiProductGrant,
  Credential,
  Credentials,
  CredentialStatus,
  IssueCredentialInput,
  IssuedCredential,
} from './credentials.js';
export type { Kvm, KvmEntry, KvmPutInput, KvmScope } from './kvm.js';
export { kvmKeyProblem, MAX_KVM_VALUE_BYTES, storedMapEncrypted } from './kvm.js';
export type { AuditEntry, AuditFilter, AuditLog } from './audit-log.js';
export { AccessTokens, type AccessTokenInput, type OAuthAccessTokensTable, type StoredAccessToken } from './access-tokens.js';
export { AnalyticsRecords, type AnalyticsRecordRow, type AnalyticsRecordsTable, type AnalyticsTables } from './analytics-records.js';
export {
  API_KEY_PATTERN,
  API_KEY_PREFIX,
  generateApiKey,
  generateKeyId,
  generateSecret,
  hashKey,
  randomBase62,
  safeEqual,
  verifySecret,
} from './keys.js';
export type { CounterStore, SmoothedResult, WindowResult } from './counters/counter-store.js';
export { CounterStoreUnavailableError } from './counters/errors.js';
export { MemoryCounterStore } from './counters/memory.js';
export { RedisCounterStore, type RedisCounterStoreOptions } from './counters/redis.js';
export { openCounterStore } from './counters/open-counter-store.js';
