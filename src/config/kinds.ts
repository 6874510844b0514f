// The registry of manifest kinds tollgate understands: kind → accepted apiVersions and spec schema.
// Adding a kind is one entry here (its schema lives beside the code that uses it).
import type { z } from 'zod';
import { gatewaySettingsSpec } from './settings.js';
import { EXTENSION_CHAIN_API_VERSION, extensionChainSpec } from '../extproc/extension-kind.js';
import {
  APIM_API_VERSION,
  apiOperationSetSpec,
  apiProductSpec,
  apimExtensionPolicySpec,
  apimTemplateRuleSpec,
  apimTemplateSpec,
  llmTokenQuotaSpec,
  promptTokenLimitSpec,
  quotaSpec,
  spikeArrestSpec,
  verifyApiKeySpec,
} from './apim-kinds.js';
import {
  endpointPickerConfigSpec,
  httpRouteSpec,
  inferenceModelRewriteSpec,
  inferenceModelSpec,
  inferenceObjectiveSpec,
  inferencePoolSpec,
} from './inference-kinds.js';
import { accessControlSpec, assignMessageSpec, corsSpec, keyValueMapOperationsSpec, keyValueMapSpec, oasValidationSpec } from './apim-kinds.js';
import { responseCacheSpec, sanitizeModelResponseSpec, sanitizeUserPromptSpec, semanticCacheLookupSpec, semanticCachePopulateSpec } from './apim-kinds.js';
import { generateJwtSpec, javaScriptSpec, oauthV2Spec, serviceCalloutSpec, tokenInjectionSpec, verifyJwtSpec } from './apim-kinds.js';

export interface KindDef {
  apiVersions: readonly string[];
  spec: z.ZodType;
  /** At most one document of this kind may exist across all files. */
  singleton?: boolean;
}

export const KINDS: Record<string, KindDef> = {
  GatewaySettings: { apiVersions: ['tollgate.dev/v1alpha1'], spec: gatewaySettingsSpec, singleton: true },
  InferencePool: { apiVersions: ['inference.networking.k8s.io/v1', 'inference.networking.x-k8s.io/v1alpha2'], spec: inferencePoolSpec },
  InferenceModel: { apiVersions: ['inference.networking.x-k8s.io/v1alpha2'], spec: inferenceModelSpec },
  InferenceObjective: { apiVersions: ['inference.networking.x-k8s.io/v1alpha2'], spec: inferenceObjectiveSpec },
  InferenceModelRewrite: { apiVersions: ['inference.networking.x-k8s.io/v1alpha2'], spec: inferenceModelRewriteSpec },
  EndpointPickerConfig: { apiVersions: ['inference.networking.x-k8s.io/v1alpha1'], spec: endpointPickerConfigSpec },
  HTTPRoute: { apiVersions: ['gateway.networking.k8s.io/v1'], spec: httpRouteSpec },
  ExtensionChain: { apiVersions: [EXTENSION_CHAIN_API_VERSION], spec: extensionChainSpec },
  APIMExtensionPolicy: { apiVersions: [APIM_API_VERSION], spec: apimExtensionPolicySpec, singleton: true },
  APIProduct: { apiVersions: [APIM_API_VERSION], spec: apiProductSpec },
  APIOperationSet: { apiVersions: [APIM_API_VERSION], spec: apiOperationSetSpec },
  ApimTemplate: { apiVersions: [APIM_API_VERSION], spec: apimTemplateSpec },
  ApimTemplateRule: { apiVersions: [APIM_API_VERSION], spec: apimTemplateRuleSpec },
  VerifyAPIKey: { apiVersions: [APIM_API_VERSION], spec: verifyApiKeySpec },
  SpikeArrest: { apiVersions: [APIM_API_VERSION], spec: spikeArrestSpec },
  Quota: { apiVersions: [APIM_API_VERSION], spec: quotaSpec },
  LLMTokenQuota: { apiVersions: [APIM_API_VERSION], spec: llmTokenQuotaSpec },
  PromptTokenLimit: { apiVersions: [APIM_API_VERSION], spec: promptTokenLimitSpec },
  AssignMessage: { apiVersions: [APIM_API_VERSION], spec: assignMessageSpec },
  OASValidation: { apiVersions: [APIM_API_VERSION], spec: oasValidationSpec },
  CORS: { apiVersions: [APIM_API_VERSION], spec: corsSpec },
  AccessControl: { apiVersions: [APIM_API_VERSION], spec: accessControlSpec },
  KeyValueMapOperations: { apiVersions: [APIM_API_VERSION], spec: keyValueMapOperationsSpec },
  KeyValueMap: { apiVersions: [APIM_API_VERSION], spec: keyValueMapSpec },
  ResponseCache: { apiVersions: [APIM_API_VERSION], spec: responseCacheSpec },
  SemanticCacheLookup: { apiVersions: [APIM_API_VERSION], spec: semanticCacheLookupSpec },
  SemanticCachePopulate: { apiVersions: [APIM_API_VERSION], spec: semanticCachePopulateSpec },
  SanitizeUserPrompt: { apiVersions: [APIM_API_VERSION], spec: sanitizeUserPromptSpec },
  SanitizeModelResponse: { apiVersions: [APIM_API_VERSION], spec: sanitizeModelResponseSpec },
  OAuthV2: { apiVersions: [APIM_API_VERSION], spec: oauthV2Spec },
  VerifyJWT: { apiVersions: [APIM_API_VERSION], spec: verifyJwtSpec },
  GenerateJWT: { apiVersions: [APIM_API_VERSION], spec: generateJwtSpec },
  ServiceCallout: { apiVersions: [APIM_API_VERSION], spec: serviceCalloutSpec },
  TokenInjection: { apiVersions: [APIM_API_VERSION], spec: tokenInjectionSpec },
  JavaScript: { apiVersions: [APIM_API_VERSION], spec: javaScriptSpec },
};
