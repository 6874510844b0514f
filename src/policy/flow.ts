// Compiling the API-management manifests into the flow a gateway runs: which policies, in which order, per phase.
// Done once per configuration load; at request time an empty phase costs a null check.
import type { ApimExtensionPolicySpec, ApimTemplateSpec } from '../config/apim-kinds.js';
import { ConfigError, type Manifest } from '../config/manifest.js';
import type { Logger } from '../lib/logger.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import { CounterGuard } from './counter-guard.js';
import type { IdentitySource } from './identity.js';
import { LLM_TOKEN_QUOTA, llmTokenQuota } from './policies/llm-token-quota/llm-token-quota.js';
import { QUOTA, quota } from './policies/quota/quota.js';
import { VERIFY_API_KEY, verifyApiKey } from './policies/verify-api-key/verify-api-key.js';
import type { PolicyRegistry } from './registry.js';
import type { Policy, PolicyDeps, Step } from './types.js';

export interface CompiledFlow {
  extension: ApimExtensionPolicySpec;
  /** In the order they run: credential policies first, then the rest as the ApimTemplates list them. */
  policies: readonly Policy[];
  authenticate: readonly Step[] | null;
  admit: readonly Step[] | null;
  counters: CounterGuard;
}

export interface FlowDeps {
  counters: CounterStore;
  identity: IdentitySource;
  logger: Logger;
  now: () => number;
}

const where = (m: Manifest) => `${m.source} document ${m.index} (${m.kind}/${m.metadata.name})`;

function problemOf(err: unknown): string {
  const issues = (err as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
  if (!issues) return `spec: ${(err as Error).message}`;
  return issues.map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`).join('; ');
}

/** The product quotas of the default chain: a Quota or LLMTokenQuota on the product's limits. */
function onProductLimits(p: Policy, type: string): boolean {
  return p.type === type && p.needsApiKey === true;
}

/**
 * compileFlow(manifests, registerBuiltins(), deps) → the flow, or null without an APIMExtensionPolicy (a plain
 * inference gateway). ApimTemplates are read in manifest order; their conditions are stored, not yet evaluated.
 * @throws ConfigError naming the file, document and field of every problem.
 */
export function compileFlow(manifests: readonly Manifest[], registry: PolicyRegistry, deps: FlowDeps): CompiledFlow | null {
  const extensions = manifests.filter((m) => m.kind === 'APIMExtensionPolicy') as Manifest<ApimExtensionPolicySpec>[];
  if (extensions.length === 0) return null;
  const problems: string[] = [];
  if (extensions.length > 1) {
    problems.push(`${where(extensions[1])}: kind: only one APIMExtensionPolicy may exist, tollgate is one gateway (first in ${where(extensions[0])})`);
  }
  const extension = extensions[0].spec;
  const counters = new CounterGuard(deps.counters, { failOpen: extension.failOpen, timeoutMs: extension.timeout, logger: deps.logger });
  const policyDeps: PolicyDeps = { counters, identity: deps.identity, now: deps.now };

  const docs = new Map<string, Manifest>();
  for (const m of manifests) if (registry.get(m.kind)) docs.set(`${m.kind}/${m.metadata.name}`, m);
  const listed: Policy[] = [];
  /** Where each policy was declared, for problems found after its factory ran. */
  const origin = new Map<Policy, string>();
  const seen = new Map<string, string>();
  for (const m of manifests) {
    if (m.kind !== 'ApimTemplate') continue;
    for (const [ti, template] of (m.spec as ApimTemplateSpec).templates.entries()) {
      for (const [pi, ref] of template.policies.entries()) {
        const at = `${where(m)}: spec.templates[${ti}].policies[${pi}]`;
        const factory = registry.get(ref.kind);
        const id = `${ref.kind}/${ref.name}`;
        const doc = docs.get(id);
        const prev = seen.get(id);
        if (!factory) problems.push(`${at}.kind: unknown policy kind "${ref.kind}" (known: ${registry.kinds().join(', ')})`);
        else if (!doc) problems.push(`${at}.name: no ${ref.kind} named "${ref.name}"`);
        else if (prev) problems.push(`${at}: ${id} is already listed at ${prev}`);
        else {
          seen.set(id, at);
          try {
            const policy = factory(ref.name, doc.spec, policyDeps);
            listed.push(policy);
            origin.set(policy, where(doc));
          } catch (err) {
            problems.push(`${where(doc)}: ${problemOf(err)}`);
          }
        }
      }
    }
  }

  if (extension.defaultSecurityEnabled) {
    if (!listed.some((p) => p.type === VERIFY_API_KEY)) listed.unshift(verifyApiKey('default-verify-api-key', {}, policyDeps));
    // After the listed policies: whatever refuses first (spike arrest, say) spends no quota.
    if (!listed.some((p) => onProductLimits(p, QUOTA))) listed.push(quota('default-product-quota', { useQuotaConfigInAPIProduct: true }, policyDeps));
    if (!listed.some((p) => onProductLimits(p, LLM_TOKEN_QUOTA))) {
      listed.push(llmTokenQuota('default-product-token-quota', { useQuotaConfigInAPIProduct: true }, policyDeps));
    }
  }

  const credentials = listed.filter((p) => p.authenticate);
  const others = listed.filter((p) => !p.authenticate);
  if (credentials.length === 0) {
    const needy = others.find((p) => p.needsApiKey);
    if (needy) {
      problems.push(`${origin.get(needy)}: spec.useQuotaConfigInAPIProduct: the API product's quota needs VerifyAPIKey (defaultSecurityEnabled, or list one in an ApimTemplate)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  // Entitlement (the credential policies' admit phase) comes before every other check, as DESIGN.md orders them.
  const policies = [...credentials, ...others];
  const authenticate = credentials.map((p) => p.authenticate!.bind(p));
  const admit = policies.filter((p) => p.admit).map((p) => p.admit!.bind(p));
  return {
    extension,
    policies,
    authenticate: authenticate.length > 0 ? authenticate : null,
    admit: admit.length > 0 ? admit : null,
    counters,
  };
}
