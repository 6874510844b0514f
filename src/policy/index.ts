// Public API of the policy engine: build it from manifests, hand its hooks to the data plane.
export { createPolicyEngine, PolicyEngine, type PolicyEngineOptions } from './engine.js';
export type { CompiledQuota, CompiledTokenQuota, GrantStatus, IdentitySource, KeyRecord, OperationSetGrant, ProductGrant } from './identity.js';
export { compileOperationSet, operationSetsByProduct } from './operation-set.js';
export { MemoryIdentitySource, type MemoryKeyInput } from './memory-identity.js';
export type { LimitReport, QuotaReport } from './quota-report.js';
export { PolicyRegistry, registerBuiltins } from './registry.js';
export type { ApimState, KvmLookup, Phases, Policy, PolicyDeps, PolicyFactory, RespondStep, Settler, Step } from './types.js';
export { LLM_TOKEN_QUOTA_FAULTS } from './policies/llm-token-quota/llm-token-quota.js';
export { PROMPT_TOKEN_LIMIT_FAULTS } from './policies/prompt-token-limit/prompt-token-limit.js';
export { QUOTA_FAULTS } from './policies/quota/quota.js';
export { SPIKE_ARREST_FAULTS } from './policies/spike-arrest/spike-arrest.js';
export { VERIFY_API_KEY_FAULTS } from './policies/verify-api-key/verify-api-key.js';
export { ACCESS_CONTROL_FAULTS } from './policies/access-control/access-control.js';
export { ASSIGN_MESSAGE_FAULTS } from './policies/assign-message/assign-message.js';
export { CORS_FAULTS } from './policies/cors/cors.js';
export { KEY_VALUE_MAP_OPERATIONS_FAULTS } from './policies/key-value-map-operations/key-value-map-operations.js';
export { OAS_VALIDATION_FAULTS } from './policies/oas-validation/oas-validation.js';
