// Building manifests in tests without YAML files.
import { manifestOf, type Manifest } from '../../src/config/manifest.js';

export function manifest(kind: string, name: string, spec: unknown): Manifest {
  return manifestOf(kind, name, spec, 'test');
}

/** A pool over `urls` serving model `model` (optionally rewritten to weighted targets). */
export function poolAndModel(urls: string[], model = 'm', extra: Record<string, unknown> = {}): Manifest[] {
  return [manifest('InferencePool', 'pool', { endpoints: urls }), manifest('InferenceModel', model, { modelName: model, poolRef: { name: 'pool' }, ...extra })];
}

export function settings(spec: Record<string, unknown>): Manifest {
  return manifest('GatewaySettings', 'settings', spec);
}
