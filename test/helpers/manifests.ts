// Building manifests in tests without YAML files.
import { manifestOf, type Manifest } from '../../src/config/manifest.js';

export function manifest(kind: string, name: string, spec: unknown): Manifest {
  return manifestOf(kind, name, spec, 'test');
}

/** A pool over `urls` serving model `model` (optionally rewritten to weighted targets). */
export function poolAndModel(urls: string[], model = 'm', extra: Record<string, unknown> = {}): Manifest[] {
  return [manifest('InferencePool', 'pool', { endpoints: urls }), manifest('InferenceModel', model, { modelName: model, poolRef: { name: 'pool' }, ...extra })];
}

/** API keys on (the default chain), with one auto-approved product `product` whose operation set has `ops`. */
export function apiKeyManifests(product = 'p', ops: Record<string, unknown> = {}): Manifest[] {
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
    manifest('APIProduct', product, { displayName: product, approvalType: 'auto', enforcementRefs: ext }),
    manifest('APIOperationSet', `${product}-ops`, { apiProductRefs: [{ name: product }], ...ops }),
  ];
}

/**
 * API management with one auto-approved product `p` whose template runs an LLMTokenQuota `tokens` (1,000,000 a day,
 * total), and model `chat` rewritten to `base-model` on pool `pool` over `urls`.
 */
export function tokenQuotaManifests(urls: string[]): Manifest[] {
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
    manifest('APIProduct', 'p', { displayName: 'P', approvalType: 'auto', enforcementRefs: ext }),
    manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }] }),
    manifest('LLMTokenQuota', 'tokens', { limit: 1_000_000, timeUnit: 'day', countOn: 'total' }),
    manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
    manifest('InferencePool', 'pool', { endpoints: urls }),
    manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
  ];
}

export function settings(spec: Record<string, unknown>): Manifest {
  return manifest('GatewaySettings', 'settings', spec);
}

/**
 * The same pool and model as a YAML file, for tests of configuration files (`name`: the InferenceModel's object
 * name). Block style, so a test may append a field to the model's spec (`${poolAndModelYaml(url)}  criticality: Urgent\n`).
 */
export function poolAndModelYaml(endpoint: string, model = 'm', name = model): string {
  return `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: pool }
spec:
  endpoints: ["${endpoint}"]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: ${name} }
spec:
  modelName: ${model}
  poolRef: { name: pool }
`;
}
