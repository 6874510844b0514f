// The registry of manifest kinds tollgate understands: kind → accepted apiVersions and spec schema.
// Adding a kind is one entry here (its schema lives beside the code that uses it).
import type { z } from 'zod';
import { gatewaySettingsSpec } from './settings.js';
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
};
