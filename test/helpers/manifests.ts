// Building manifests in tests without YAML files.
import { validateDocument, type Manifest } from '../../src/config/manifest.js';

export function manifest(kind: string, name: string, spec: unknown, apiVersion?: string): Manifest {
  const versions: Record<string, string> = {
    GatewaySettings: 'tollgate.dev/v1alpha1',
    InferencePool: 'inference.networking.k8s.io/v1',
    EndpointPickerConfig: 'inference.networking.x-k8s.io/v1alpha1',
    HTTPRoute: 'gateway.networking.k8s.io/v1',
  };
  const r = validateDocument({ apiVersion: apiVersion ?? versions[kind] ?? (kind.startsWith('Inference') ? 'inference.networking.x-k8s.io/v1alpha2' : 'apim.googleapis.com/v1'), kind, metadata: { name }, spec }, 'test', 0);
  if (!r.manifest) throw new Error(r.problems.join('\n'));
  return r.manifest;
}

/** A pool over `urls` serving model `model` (optionally rewritten to weighted targets). */
export function poolAndModel(urls: string[], model = 'm', extra: Record<string, unknown> = {}): Manifest[] {
  return [manifest('InferencePool', 'pool', { endpoints: urls }), manifest('InferenceModel', model, { modelName: model, poolRef: { name: 'pool' }, ...extra })];
}

export function settings(spec: Record<string, unknown>): Manifest {
  return manifest('GatewaySettings', 'settings', spec);
}
