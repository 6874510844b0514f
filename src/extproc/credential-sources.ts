// The headers and query parameters the credential policies of the configuration read from (VerifyAPIKey's
// apiKey.ref, VerifyJWT's source.ref), for an answer that must withhold them before any policy has run.
import type { VerifyApiKeySpec, VerifyJwtSpec } from '../config/apim-kinds.js';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { RequestContext } from '../gateway/context.js';
import { compileCredential } from '../policy/variables.js';

export interface CredentialSources {
  /** Lower-case header names. */
  headers: readonly string[];
  query: ReadonlySet<string>;
}

const REFS = new Map<string, (spec: unknown) => string | undefined>([
  ['VerifyAPIKey', (spec) => (spec as VerifyApiKeySpec | undefined)?.apiKey?.ref],
  ['VerifyJWT', (spec) => (spec as VerifyJwtSpec | undefined)?.source?.ref],
]);

const known = new WeakMap<RuntimeConfig, CredentialSources>();

/**
 * Every source a credential policy of `config.manifests` names, whether or not a template lists it or its condition
 * holds. Only the manifests of --config files: the admin API's are the policy engine's alone.
 * @example credentialSources(config) → { headers: ['x-key'], query: Set { 'apikey' } }
 */
export function credentialSources(config: RuntimeConfig): CredentialSources {
  let sources = known.get(config);
  if (sources) return sources;
  // Each policy's own withhold says what it takes out, so a name is read exactly as the policy reads it.
  const probe: Pick<RequestContext, 'upstreamHeaders' | 'withheldQuery'> = {};
  for (const m of config.manifests) {
    const ref = REFS.get(m.kind)?.(m.spec);
    if (ref === undefined) continue;
    try {
      compileCredential(ref).withhold(probe as RequestContext);
    } catch {
      // A ref the engine refuses too: no policy reads it.
    }
  }
  sources = { headers: Object.keys(probe.upstreamHeaders ?? {}), query: probe.withheldQuery ?? new Set() };
  known.set(config, sources);
  return sources;
}
