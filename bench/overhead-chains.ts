// The API-management load of `bench overhead`: 100 API products, 10,000 keys, and the policy chains the
// benchmark compares — the default chain (what defaultSecurityEnabled turns on: VerifyAPIKey + the product
// quota) and the full chain (default + SpikeArrest + LLMTokenQuota), with limits far above the load so every
// request does all the work and none is refused.
import { manifestOf, type Manifest } from '../src/config/manifest.js';
import type { Gateway } from '../src/gateway/gateway.js';

export type Chain = 'none' | 'default' | 'full' | 'full-quiet' | 'full-traced' | 'full-sampled' | 'full-redis' | 'catalogue';

export const PRODUCTS = 100;
export const KEYS = 10_000;

const manifest = (kind: string, name: string, spec: unknown): Manifest => manifestOf(kind, name, spec, 'bench');

/**
 * `none` and `default` run without usage records; `full` is DESIGN.md's full chain (analytics and metrics on).
 * `full-quiet` turns observability off (usage records and per-request metrics; tracing is off unless asked for) and
 * `full-traced` adds a trace per request exported over OTLP (to the stub);
 * `full-sampled` traces one request in ten, as busy production gateways usually do: they show what observability costs.
 * `full-redis` is `full` with its counters in Redis (the process is started with a Redis URL): what sharing them costs.
 */
export function chainManifests(chain: Chain, upstreamUrl: string): Manifest[] {
  const traced = chain === 'full-traced' || chain === 'full-sampled';
  const out = [
    manifest('GatewaySettings', 'bench', {
      logging: { accessLog: false },
      // DESIGN.md's scenarios: analytics (and metrics) are part of the full chain; the plain gateway and the default
      // chain measure routing and policies alone.
      analytics: { enabled: chain === 'full' || chain === 'full-redis' || traced || chain === 'catalogue' },
      metrics: { requests: chain !== 'full-quiet' },
      ...(traced && { tracing: { endpoint: upstreamUrl, sampleRatio: chain === 'full-sampled' ? 0.1 : 1 } }),
    }),
    manifest('InferencePool', 'bench', { endpoints: [upstreamUrl] }),
    manifest('InferenceModel', 'bench', { modelName: 'bench-model', poolRef: { name: 'bench' } }),
  ];
  if (chain === 'none') return out;
  out.push(manifest('APIMExtensionPolicy', 'bench', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }));
  for (let p = 0; p < PRODUCTS; p++) {
    out.push(manifest('APIProduct', `product-${p}`, { displayName: `Product ${p}` }));
    out.push(
      manifest('APIOperationSet', `product-${p}-ops`, {
        apiProductRefs: [{ name: `product-${p}` }],
        quota: { limit: 1_000_000_000, interval: 1, timeUnit: 'minute' },
        restOperations: [{ name: 'chat', path: '/v1/chat/completions', methods: ['POST'] }],
        llmOperations: { models: ['bench-model'] },
      }),
    );
  }
  if (chain.startsWith('full') || chain === 'catalogue') {
    out.push(manifest('SpikeArrest', 'bench-spike', { rate: '1000000ps', useEffectiveCount: true, identifier: { ref: 'developer.app.name' } }));
    out.push(manifest('LLMTokenQuota', 'bench-tokens', { limit: 1_000_000_000_000, interval: 1, timeUnit: 'hour', countOn: 'total', identifier: { ref: 'developer.app.name' } }));
    const policies = [
      { kind: 'SpikeArrest', name: 'bench-spike' },
      { kind: 'LLMTokenQuota', name: 'bench-tokens' },
    ];
    if (chain === 'catalogue') {
      // The "full catalogue": prompt sanitizing (every detector), a response-cache lookup (the benchmark's
      // requests carry no temperature 0 or seed, so the cache is consulted and bypassed, never a hit) and a header.
      out.push(manifest('SanitizeUserPrompt', 'bench-guard', { filters: { piAndJailbreak: { action: 'block' }, sensitiveData: { action: 'redact' }, secrets: { action: 'redact' } } }));
      out.push(manifest('ResponseCache', 'bench-cache', { expirySettings: { timeoutInSeconds: 60 }, scope: 'app' }));
      out.push(manifest('AssignMessage', 'bench-tag', { set: { headers: [{ name: 'x-tollgate-app', value: '{developer.app.name}' }] } }));
      policies.push({ kind: 'SanitizeUserPrompt', name: 'bench-guard' }, { kind: 'ResponseCache', name: 'bench-cache' }, { kind: 'AssignMessage', name: 'bench-tag' });
    }
    out.push(manifest('ApimTemplate', 'bench', { templates: [{ policies }] }));
  }
  return out;
}

/** 100 developers × 100 apps, one key each, every app on one of the products; returns `sample` of the keys. */
export async function seedKeys(gateway: Gateway, sample: number): Promise<string[]> {
  const keys: string[] = [];
  const perDeveloper = KEYS / 100;
  // One transaction: one change notification, one snapshot reload.
  await gateway.apim.db.withActor('bench').transaction(async (db) => {
  for (let d = 0; d < 100; d++) {
    const dev = await db.developers.create({ email: `dev${d}@bench.local`, firstName: 'Bench', lastName: String(d), userName: `dev${d}` });
    for (let a = 0; a < perDeveloper; a++) {
      const app = await db.apps.create(dev.id, { name: `app-${a}` });
      const product = `product-${(d * perDeveloper + a) % PRODUCTS}`;
      const issued = await db.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: product, status: 'approved' }] });
      if (keys.length < sample) keys.push(issued.consumerKey);
    }
  }
  });
  await gateway.apim.refresh();
  return keys;
}
