// Policy kinds the engine can build: manifest kind → factory. Built-ins are registered in one explicit call.
import { llmTokenQuota } from './policies/llm-token-quota/llm-token-quota.js';
import { promptTokenLimit } from './policies/prompt-token-limit/prompt-token-limit.js';
import { quota } from './policies/quota/quota.js';
import { spikeArrest } from './policies/spike-arrest/spike-arrest.js';
import { verifyApiKey } from './policies/verify-api-key/verify-api-key.js';
import { accessControl } from './policies/access-control/access-control.js';
import { assignMessage } from './policies/assign-message/assign-message.js';
import { cors } from './policies/cors/cors.js';
import { keyValueMapOperations } from './policies/key-value-map-operations/key-value-map-operations.js';
import { oasValidation } from './policies/oas-validation/oas-validation.js';
import { responseCache } from './policies/response-cache/response-cache.js';
import { sanitizeModelResponse } from './policies/sanitize-model-response/sanitize-model-response.js';
import { sanitizeUserPrompt } from './policies/sanitize-user-prompt/sanitize-user-prompt.js';
import { semanticCacheLookup } from './policies/semantic-cache-lookup/semantic-cache-lookup.js';
import { semanticCachePopulate } from './policies/semantic-cache-populate/semantic-cache-populate.js';
import { generateJwt } from './policies/generate-jwt/generate-jwt.js';
import { javaScript } from './policies/javascript/javascript.js';
import { oauthV2 } from './policies/oauth-v2/oauth-v2.js';
import { serviceCallout } from './policies/service-callout/service-callout.js';
import { tokenInjection } from './policies/token-injection/token-injection.js';
import { verifyJwt } from './policies/verify-jwt/verify-jwt.js';
import type { PolicyFactory } from './types.js';

export class PolicyRegistry {
  readonly #factories = new Map<string, PolicyFactory>();

  /** register('SpikeArrest', spikeArrest); a kind registered twice is a programming error. */
  register(kind: string, factory: PolicyFactory): this {
    if (this.#factories.has(kind)) throw new Error(`policy kind "${kind}" is already registered`);
    this.#factories.set(kind, factory);
    return this;
  }

  get(kind: string): PolicyFactory | undefined {
    return this.#factories.get(kind);
  }

  kinds(): string[] {
    return [...this.#factories.keys()];
  }
}

/** The policies tollgate ships, by manifest kind. */
export function registerBuiltins(registry: PolicyRegistry = new PolicyRegistry()): PolicyRegistry {
  return registry
    .register('VerifyAPIKey', verifyApiKey)
    .register('SpikeArrest', spikeArrest)
    .register('Quota', quota)
    .register('LLMTokenQuota', llmTokenQuota)
    .register('PromptTokenLimit', promptTokenLimit)
    .register('AssignMessage', assignMessage)
    .register('OASValidation', oasValidation)
    .register('CORS', cors)
    .register('AccessControl', accessControl)
    .register('KeyValueMapOperations', keyValueMapOperations)
    .register('ResponseCache', responseCache)
    .register('SemanticCacheLookup', semanticCacheLookup)
    .register('SemanticCachePopulate', semanticCachePopulate)
    .register('SanitizeUserPrompt', sanitizeUserPrompt)
    .register('SanitizeModelResponse', sanitizeModelResponse)
    .register('OAuthV2', oauthV2)
    .register('VerifyJWT', verifyJwt)
    .register('GenerateJWT', generateJwt)
    .register('ServiceCallout', serviceCallout)
    .register('TokenInjection', tokenInjection)
    .register('JavaScript', javaScript);
}
