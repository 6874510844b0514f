// The headers and query parameters the credential policies of the API-management manifests read from (VerifyAPIKey's
// apiKey.ref, VerifyJWT's source.ref): withheld from the model server whether or not those policies run.
import type { VerifyApiKeySpec, VerifyJwtSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import type { RequestContext } from '../gateway/context.js';
import { compileCredential, type CredentialSource } from './variables.js';

export interface CredentialSources {
  /** Lower-case header names. */
  headers: readonly string[];
  query: ReadonlySet<string>;
  /**
   * Takes every one of them out of what goes upstream (ctx.upstreamHeaders, ctx.withheldQuery), as the policy reading
   * it does; later policies still read them.
   */
  withhold(ctx: RequestContext): void;
}

const REFS = new Map<string, (spec: unknown) => string | undefined>([
  ['VerifyAPIKey', (spec) => (spec as VerifyApiKeySpec | undefined)?.apiKey?.ref],
  ['VerifyJWT', (spec) => (spec as VerifyJwtSpec | undefined)?.source?.ref],
]);

/**
 * Every source a credential policy of `manifests` names (those of the --config files and of the admin API alike),
 * whether or not a template lists it or its condition holds.
 * @example credentialSources(manifests) → { headers: ['x-key'], query: Set { 'apikey' }, withhold }
 */
export function credentialSources(manifests: readonly Manifest[]): CredentialSources {
  // Each policy's own withhold says what it takes out, so a name is read exactly as the policy reads it.
  const withholds: CredentialSource['withhold'][] = [];
  for (const m of manifests) {
    const ref = REFS.get(m.kind)?.(m.spec);
    if (ref === undefined) continue;
    try {
      withholds.push(compileCredential(ref).withhold);
    } catch {
      // A ref the engine refuses too: no policy reads it.
    }
  }
  const withhold = (ctx: RequestContext) => {
    for (const w of withholds) w(ctx);
  };
  // What they take out of a request names them.
  const probe: Pick<RequestContext, 'upstreamHeaders' | 'withheldQuery'> = {};
  withhold(probe as RequestContext);
  return { headers: Object.keys(probe.upstreamHeaders ?? {}), query: probe.withheldQuery ?? new Set(), withhold };
}
