// Telling each cache of a compiled flow which configuration shapes its answers (answer-config.ts): the response
// policies that edit or refuse answers, and the request policies listed after its lookup (a hit skips both), with
// their specs, order and template conditions. Policies that shape no answer (quotas, another template's spike
// arrest) are left out, so changing them keeps every cache's entries.
import type { Manifest } from '../../config/manifest.js';
import { editsAnswer } from '../phase-steps.js';
import { LLM_TOKEN_QUOTA } from '../policies/llm-token-quota/llm-token-quota.js';
import { QUOTA } from '../policies/quota/quota.js';
import { SPIKE_ARREST } from '../policies/spike-arrest/spike-arrest.js';
import { where, type TemplatePolicy } from '../template-policies.js';
import type { Policy } from '../types.js';
import { answerDigest, isAnswerShapedCache } from './answer-config.js';

/**
 * Request policies whose verdict is about who calls and how often, never about what is asked: an entry stored before
 * one changed is the answer it would still give. (Credential policies always run before every lookup.) Any other
 * request policy counts, so one added to the catalogue errs on the side of a new namespace.
 */
const DECIDES_BY_CALLER = new Set([QUOTA, SPIKE_ARREST, LLM_TOKEN_QUOTA]);

const checksRequest = (p: Policy): boolean => p.admit !== undefined && !DECIDES_BY_CALLER.has(p.type) && !isAnswerShapedCache(p);

/**
 * Every cache lookup in `gatewayChain` (the gateway's admit chain, in order) and `productChains` (each product's own,
 * which run after the gateway's) is given its AnswerConfig. What the gateway's templates shape goes into its namespace;
 * what a product's own templates shape, into the keys of that product's requests.
 */
export function configureCacheAnswers(manifests: readonly Manifest[], gatewayChain: readonly TemplatePolicy[], productChains: ReadonlyMap<string, readonly TemplatePolicy[]>): void {
  const declared = new Map(manifests.map((m) => [where(m), m]));
  // The spec as declared, not the origin: a document moved or another added to its file changes nothing.
  const describe = (t: TemplatePolicy) => {
    const m = declared.get(t.origin);
    return { policy: m ? `${m.kind}/${m.metadata.name}` : `${t.policy.type}/${t.policy.name}`, spec: m?.spec ?? null, condition: t.condition?.source ?? null };
  };
  const editors = (chain: readonly TemplatePolicy[]) => chain.filter((t) => editsAnswer(t.policy)).map(describe);
  // The checks a hit of `cache` skips in `chain`: those after it, or all of them when the chain runs after its lookup.
  const checksAfter = (chain: readonly TemplatePolicy[], cache: Policy) =>
    chain
      .slice(chain.findIndex((t) => t.policy === cache) + 1)
      .filter((t) => checksRequest(t.policy))
      .map(describe);
  const gatewayEditors = editors(gatewayChain);
  const productEditors = new Map([...productChains].map(([product, chain]) => [product, editors(chain)]));
  const configured = new Set<Policy>();
  for (const { policy: cache } of [gatewayChain, ...productChains.values()].flat()) {
    if (!isAnswerShapedCache(cache) || configured.has(cache)) continue;
    configured.add(cache);
    const atGateway = gatewayChain.some((t) => t.policy === cache);
    const namespace = answerDigest({ editors: gatewayEditors, checks: atGateway ? checksAfter(gatewayChain, cache) : [] });
    const parts = new Map<string, string>();
    for (const [product, chain] of productChains) {
      const own = { editors: productEditors.get(product)!, checks: checksAfter(chain, cache) };
      if (own.editors.length + own.checks.length > 0) parts.set(product, `${answerDigest(own)}:`);
    }
    cache.configureAnswers({ namespace, productPart: (product) => (product === undefined ? '' : (parts.get(product) ?? '')) });
  }
}
