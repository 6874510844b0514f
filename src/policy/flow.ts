// Compiling the API-management manifests into the flow a gateway runs: which policies, in which order, per phase,
// under which template conditions, and which run only for one product's requests. Done once per configuration
// load; at request time an empty phase costs a null check.
import { apimExtensionPolicySpec, type ApiProductSpec, type ApimExtensionPolicySpec, type ApimTemplateRuleSpec } from '../config/apim-kinds.js';
import { checkGovernance, governanceFacts } from '../config/governance.js';
import { ConfigError, type Manifest } from '../config/manifest.js';
import type { Logger } from '../lib/logger.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import type { Condition } from './condition.js';
import { CounterGuard, type CounterGuardOptions } from './counter-guard.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import type { IdentitySource } from './identity.js';
import { editsAnswer, phaseSteps, respondSteps } from './phase-steps.js';
import { hitHeaders } from './caching/cached-answer.js';
import { configureCacheAnswers } from './caching/configure-caches.js';
import { LLM_TOKEN_QUOTA, llmTokenQuota } from './policies/llm-token-quota/llm-token-quota.js';
import { QUOTA, quota } from './policies/quota/quota.js';
import { RESPONSE_CACHE } from './policies/response-cache/response-cache.js';
import { SEMANTIC_CACHE_LOOKUP } from './policies/semantic-cache-lookup/semantic-cache-lookup.js';
import { SANITIZE_USER_PROMPT } from './policies/sanitize-user-prompt/sanitize-user-prompt.js';
import { verifyApiKey } from './policies/verify-api-key/verify-api-key.js';
import { ACCESS_CONTROL } from './policies/access-control/access-control.js';
import type { PolicyRegistry } from './registry.js';
import type { CacheResources } from './caching/cache-resources.js';
import { runRespond, runSteps } from './run-steps.js';
import { buildTemplates, FROM_ADMIN_API, unknownPolicyKind, where, type TemplatePolicy } from './template-policies.js';
import type { ApimState, KvmLookup, Phases, Policy, PolicyDeps, RespondStep, Step } from './types.js';
import type { PromptCalibration } from './prompt-calibration.js';
import type { TokensInFlight } from './tokens-in-flight.js';

export interface CompiledFlow {
  extension: ApimExtensionPolicySpec;
  /**
   * In the order they run: credential policies first, then the gateway templates', the products', the defaults (which
   * run before the first cache lookup of a gateway template, when there is one).
   */
  policies: readonly Policy[];
  phases: Phases;
  /** The same policies with where each runs, for the quota report. */
  placements: readonly Placement[];
  /** Why policies the admin API stored, and no template lists, cannot be built (BuiltTemplates.unlisted): logged. */
  unlisted: readonly string[];
}

/** Where a policy runs: for every request or one product's (`templateRefs`), under its template's condition. */
export interface Placement {
  policy: Policy;
  /** null: every request; otherwise only requests entitled through this product. */
  product: string | null;
  /** The CEL source of the template entry's condition; null: always. */
  condition: string | null;
}

export interface FlowDeps {
  counters: CounterStore;
  identity: IdentitySource;
  logger: Logger;
  now: () => number;
  kvm?: KvmLookup;
  caches?: CacheResources;
  promptCalibration?: PromptCalibration;
  tokensInFlight?: TokensInFlight;
  onCounterError?: CounterGuardOptions['onError'];
  /** Each request policy's step gets a span of its own when this tracer has policySpans on. */
  tracer?: RequestTracer;
}

/** The product quotas of the default chain: a Quota or LLMTokenQuota on the product's limits. */
function onProductLimits(p: Policy, type: string): boolean {
  return p.type === type && p.needsApiKey === true;
}

/** Which requests of a chain a policy on the product's limits counts: every one (true), or those a condition holds for. */
type CountedBy = true | readonly Condition[];

function countedBy(list: readonly TemplatePolicy[], type: string): CountedBy {
  const on = list.filter((t) => onProductLimits(t.policy, type));
  return on.some((t) => !t.condition) ? true : on.map((t) => t.condition!);
}

/**
 * The conditions of entries holding a product quota, each evaluated once per request: the default product quota asks
 * them too (it counts the requests they skip), and a policy between the two (a header set) must not make them disagree.
 */
function answerOnce(policies: readonly TemplatePolicy[]): void {
  const once = new Map<Condition, Condition>();
  for (const t of policies) {
    const c = t.condition;
    if (!c || !t.policy.needsApiKey) continue;
    if (!once.has(c)) {
      const answers = new WeakMap<ApimState, boolean>();
      once.set(c, {
        source: c.source,
        test(ctx, state) {
          let answer = answers.get(state);
          if (answer === undefined) answers.set(state, (answer = c.test(ctx, state)));
          return answer;
        },
      });
    }
    t.condition = once.get(c)!;
  }
}

/**
 * The default product quota of `type` (`make` builds it) for the requests no policy of that type on the product's
 * limits counts, or null when a gateway-level one counts every request. A product's own templates replace it for that
 * product's requests alone; an entry under a condition, for the requests its condition holds for alone.
 */
function defaultProductQuota(type: string, make: () => Policy, gateway: readonly TemplatePolicy[], byProduct: ReadonlyMap<string, readonly TemplatePolicy[]>): TemplatePolicy | null {
  const everywhere = countedBy(gateway, type);
  if (everywhere === true) return null;
  const perProduct = new Map<string, CountedBy>();
  for (const [product, list] of byProduct) {
    const own = countedBy(list, type);
    if (own === true || own.length > 0) perProduct.set(product, own === true ? true : [...everywhere, ...own]);
  }
  const policy = make();
  if (everywhere.length === 0 && perProduct.size === 0) return unconditional(policy);
  const countedFor = (state: ApimState) => perProduct.get(state.product?.name ?? '') ?? everywhere;
  const { admit, usage } = policy;
  return unconditional({
    ...policy,
    admit: (ctx, state) => {
      const by = countedFor(state);
      return by === true || by.some((c) => c.test(ctx, state)) ? undefined : admit!.call(policy, ctx, state);
    },
    // The quota report lists it for the products it counts for.
    usage: (ctx, state) => (countedFor(state) === true ? Promise.resolve(null) : usage!.call(policy, ctx, state)),
  });
}

const unconditional = (policy: Policy): TemplatePolicy => ({ policy, condition: null, origin: 'defaultSecurityEnabled' });
const orNull = <T>(steps: T[]): T[] | null => (steps.length > 0 ? steps : null);
const looksUpCache = (t: TemplatePolicy) => t.policy.type === RESPONSE_CACHE || t.policy.type === SEMANTIC_CACHE_LOOKUP;
const isAccessControl = (t: TemplatePolicy) => t.policy.type === ACCESS_CONTROL;

/**
 * The AccessControl entries (each under its template's condition) ahead of the others, which keep their order: it runs
 * before anything else, wherever a template lists it, so a denied address never reaches the token endpoint (a secret
 * oracle, a token stored per try) nor a CORS preflight.
 */
const accessControlFirst = (list: TemplatePolicy[]): TemplatePolicy[] => [...list.filter(isAccessControl), ...list.filter((t) => !isAccessControl(t))];

/**
 * `policy` (the default VerifyAPIKey) for the requests no credential policy before it identified: a template's
 * credential policy under a condition that did not hold leaves `state.key` unset, and so no request goes on
 * unidentified. Entitlement another credential policy decided stands.
 */
function unlessIdentified(policy: Policy): Policy {
  const { authenticate, admit } = policy;
  return {
    ...policy,
    authenticate: (ctx, state) => (state.key ? undefined : authenticate!.call(policy, ctx, state)),
    admit: (ctx, state) => (state.product ? undefined : admit!.call(policy, ctx, state)),
  };
}

/** `defaults` placed before the first cache lookup of `list`, or after the whole list when it has none. */
function beforeCacheLookup(list: readonly TemplatePolicy[], defaults: readonly TemplatePolicy[]): TemplatePolicy[] {
  const at = list.findIndex(looksUpCache);
  return at === -1 ? [...list, ...defaults] : [...list.slice(0, at), ...defaults, ...list.slice(at)];
}

/**
 * Governance at load: a violation the --config files make by themselves (a file template breaking a file rule, a
 * file object naming something missing) refuses the load. One an admin-API object takes part in, as the template or
 * as the rule, is logged: apply reported it (or refused it), and the objects stay applied when a rule changes over
 * them, whether through the admin API or in the files, so a rule change never freezes the engine.
 */
function governance(manifests: readonly Manifest[], problems: string[], logger: Logger): void {
  const bySubject = new Map(manifests.map((m) => [`${m.kind}/${m.metadata.name}`, m]));
  const logged: string[] = [];
  for (const v of checkGovernance(governanceFacts(manifests))) {
    const rule = v.rule === undefined ? undefined : bySubject.get(`ApimTemplateRule/${v.rule}`);
    const subject = bySubject.get(v.subject);
    if (rule?.source === FROM_ADMIN_API || subject?.source === FROM_ADMIN_API) logged.push(v.message);
    else {
      const decidedBy = rule ?? subject;
      problems.push(`${decidedBy ? where(decidedBy) : v.subject}: ${v.message}`);
    }
  }
  if (logged.length > 0) logger.warn({ violations: logged }, 'applied API-management objects break template rules; fix them through the admin API');
}

/**
 * A rule's kinds must be policy kinds, as a template entry's must: rules compare kinds as text, so a misspelt one
 * (`Javascript` on a denyList) would deny nothing without a word.
 */
function unknownRuleKinds(manifests: readonly Manifest[], registry: PolicyRegistry, problems: string[]): void {
  for (const m of manifests) {
    if (m.kind !== 'ApimTemplateRule') continue;
    const spec = m.spec as ApimTemplateRuleSpec;
    for (const list of ['requiredList', 'denyList', 'allowList'] as const) {
      spec[list]?.forEach(({ kind }, i) => {
        if (!registry.get(kind)) problems.push(`${where(m)}: spec.${list}[${i}].kind: ${unknownPolicyKind(kind, registry)}`);
      });
    }
  }
}

const LOOKUP_KINDS: Record<string, string> = { [RESPONSE_CACHE]: 'ResponseCache', [SEMANTIC_CACHE_LOOKUP]: 'SemanticCacheLookup' };

/**
 * The SanitizeUserPrompt entries listed after a cache lookup that runs before them (in their own chain, or in the
 * gateway's, which runs before a product's): a hit skips them, so a prompt a semantic cache finds like a cached one is
 * answered unscreened. Allowed, as for quotas listed there, but rarely meant: logged at load, naming both.
 */
function promptChecksAfterLookup(templates: ReadonlyMap<string, readonly TemplatePolicy[]>, gatewayChain: readonly TemplatePolicy[], productChains: ReadonlyMap<string, readonly TemplatePolicy[]>): string[] {
  const templateOf = new Map([...templates].flatMap(([name, list]) => list.map((t) => [t, name] as const)));
  const named = (t: TemplatePolicy, kind: string) => `${kind}/${t.policy.name} (ApimTemplate/${templateOf.get(t)})`;
  const found = new Set<string>();
  const scan = (chain: readonly TemplatePolicy[], lookup: TemplatePolicy | undefined) => {
    for (const t of chain) {
      if (looksUpCache(t)) lookup ??= t;
      else if (lookup && t.policy.type === SANITIZE_USER_PROMPT) found.add(`${named(t, 'SanitizeUserPrompt')} after ${named(lookup, LOOKUP_KINDS[lookup.policy.type])}`);
    }
  };
  scan(gatewayChain, undefined);
  for (const chain of productChains.values()) scan(chain, gatewayChain.find(looksUpCache));
  return [...found];
}

/** Each product's template references, in order (templates that do not exist are reported by governance). */
function productTemplates(manifests: readonly Manifest[], templates: ReadonlyMap<string, TemplatePolicy[]>): Map<string, TemplatePolicy[]> {
  const out = new Map<string, TemplatePolicy[]>();
  for (const m of manifests) {
    const refs = m.kind === 'APIProduct' ? (m.spec as ApiProductSpec).templateRefs : undefined;
    if (refs) out.set(m.metadata.name, refs.flatMap((r) => templates.get(r.name) ?? []));
  }
  return out;
}

/** What the policies are built with: they count through a guard that follows the APIMExtensionPolicy. */
function policyDepsOf(extension: ApimExtensionPolicySpec, deps: FlowDeps): PolicyDeps {
  const counters = new CounterGuard(deps.counters, { failOpen: extension.failOpen, timeoutMs: extension.timeout, logger: deps.logger, onError: deps.onCounterError });
  return { counters, identity: deps.identity, now: deps.now, logger: deps.logger, ...(deps.kvm && { kvm: deps.kvm }), ...(deps.caches && { caches: deps.caches }), ...(deps.promptCalibration && { promptCalibration: deps.promptCalibration }), ...(deps.tokensInFlight && { tokensInFlight: deps.tokensInFlight }) };
}

/** Policies checked while API management is off never run: the APIMExtensionPolicy's defaults build them. */
const NO_EXTENSION = apimExtensionPolicySpec.parse({ targetRef: { name: 'tollgate' } });

/**
 * What compileFlow checks in the policies (every one declared), the templates and the rules, for manifests without an
 * APIMExtensionPolicy, where it builds no flow: API management is off, but what is applied meanwhile runs once one
 * is applied, so a misspelt rule kind or a template naming a missing policy is refused by the apply (or load) that
 * brings it, naming its document, rather than by that later one.
 * @example checkTemplates(manifests, registerBuiltins(), deps) → ['admin-api document 1 (ApimTemplate/t): spec.templates[0].policies[0].name: no SpikeArrest named "sa"']
 */
export function checkTemplates(manifests: readonly Manifest[], registry: PolicyRegistry, deps: FlowDeps): string[] {
  const problems: string[] = [];
  const { unlisted } = buildTemplates(manifests, registry, policyDepsOf(NO_EXTENSION, deps), problems);
  unknownRuleKinds(manifests, registry, problems);
  governance(manifests, problems, deps.logger);
  return [...problems, ...unlisted];
}

/**
 * compileFlow(manifests, registerBuiltins(), deps) → the flow, or null without an APIMExtensionPolicy (a plain
 * inference gateway). ApimTemplates run at gateway level, in manifest order, unless an APIProduct names them in
 * `templateRefs`: then they run after entitlement, only for requests entitled through that product.
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
  const policyDeps = policyDepsOf(extension, deps);

  const { templates, unlisted } = buildTemplates(manifests, registry, policyDeps, problems);
  const byProduct = productTemplates(manifests, templates);
  const productOwned = new Set([...byProduct.values()].flat());
  const listed = accessControlFirst([...templates.values()].flat().filter((t) => !productOwned.has(t)));
  for (const [product, list] of byProduct) {
    for (const t of list) {
      if (t.policy.intercept || t.policy.authenticate) {
        problems.push(`${t.origin}: a ${t.policy.type} policy runs before entitlement, so APIProduct/${product} cannot run it: list its template at gateway level`);
      }
    }
  }

  const defaults: TemplatePolicy[] = [];
  if (extension.defaultSecurityEnabled) {
    // A template's own credential policy (an API key read elsewhere, OAuth access tokens) replaces the default one
    // only when it runs for every request: behind conditional ones, the default checks the requests they skipped.
    if (!listed.some((t) => t.policy.identifiesKey && !t.condition)) {
      const afterIdentifiers = listed.reduce((at, t, i) => (t.policy.identifiesKey ? i + 1 : at), 0);
      listed.splice(afterIdentifiers, 0, unconditional(unlessIdentified(verifyApiKey('default-verify-api-key', {}, policyDeps))));
    }
    answerOnce([...templates.values()].flat());
    // Placed below, after the listed policies but before the first cache lookup.
    const product = { useQuotaConfigInAPIProduct: true };
    const made = [
      defaultProductQuota(QUOTA, () => quota('default-product-quota', product, policyDeps), listed, byProduct),
      defaultProductQuota(LLM_TOKEN_QUOTA, () => llmTokenQuota('default-product-token-quota', product, policyDeps), listed, byProduct),
    ];
    defaults.push(...made.filter((t) => t !== null));
  }

  const credentials = listed.filter((t) => t.policy.authenticate);
  const others = listed.filter((t) => !t.policy.authenticate);
  if (credentials.length === 0) {
    const needy = [...others, ...productOwned].find((t) => t.policy.needsApiKey);
    if (needy) {
      problems.push(`${needy.origin}: spec.useQuotaConfigInAPIProduct: the API product's quota needs VerifyAPIKey (defaultSecurityEnabled, or list one in an ApimTemplate)`);
    }
  }
  unknownRuleKinds(manifests, registry, problems);
  governance(manifests, problems, deps.logger);
  if (problems.length > 0) throw new ConfigError(problems);
  if (unlisted.length > 0) deps.logger.warn({ problems: unlisted }, 'policies stored through the admin API cannot be built; no template lists them, so none runs: fix or delete them through the admin API');

  // Entitlement (the credential policies' admit phase) comes before every other check, as DESIGN.md orders them.
  const gateway = [...credentials, ...others];
  // The default quotas run after the listed policies (whatever refuses first, spike arrest say, spends no quota) but
  // before the first cache lookup, where DESIGN.md puts the token reservation: the token quota may write max_tokens,
  // and a cache keys on the request as it goes upstream (with the cap set after the lookup, an answer it cut short was
  // stored under the uncapped request's key and served to every tenant of the cache).
  const defaultsInGateway = gateway.some(looksUpCache);
  const gatewayChain = defaultsInGateway ? beforeCacheLookup(gateway, defaults) : gateway;
  const productChains = defaultsInGateway ? byProduct : new Map([...byProduct].map(([p, list]) => [p, beforeCacheLookup(list, defaults)]));
  // A cache's entries are those of the policies that shape its answers now: one added later is never bypassed by a hit.
  configureCacheAnswers(manifests, gatewayChain, productChains);
  const unscreened = promptChecksAfterLookup(templates, gatewayChain, productChains);
  if (unscreened.length > 0) {
    deps.logger.warn({ policies: unscreened }, 'prompt checks listed after a cache lookup do not run for its hits: list SanitizeUserPrompt before ResponseCache and SemanticCacheLookup');
  }
  // What a request entitled through a product without templates of its own runs after the gateway's.
  const productless = defaultsInGateway ? [] : phaseSteps(defaults, 'admit', deps.tracer);
  const productAdmit = new Map([...productChains].map(([p, list]) => [p, phaseSteps(list, 'admit', deps.tracer)] as const).filter(([, s]) => s.length > 0));
  const productRespond = new Map([...byProduct].map(([p, list]) => [p, respondSteps(list)] as const).filter(([, s]) => s.length > 0));
  // Another product's requests get other rewrites, or none: an answer is its own product's (for a global cache).
  const productsRewrite = [...byProduct.values()].some((list) => list.some((t) => editsAnswer(t.policy)));
  // The entitled product's own steps: none before entitlement, nor for another product's requests.
  const admitProduct: Step = (ctx, state) => runSteps(productAdmit.get(state.product?.name ?? '') ?? productless, ctx, state);
  const respondProduct: RespondStep = (ctx, state, status) => {
    if (productsRewrite) state.answerSharedWithin ??= 'product';
    const steps = productRespond.get(state.product?.name ?? '');
    return steps && runRespond(steps, ctx, state, status);
  };
  const respond = [...respondSteps([...listed, ...defaults]), ...(productRespond.size > 0 ? [respondProduct] : [])];
  // A cache hit skips the response flow: its header changes are made once admission is over.
  const hitsSkipRespond = respond.length > 0 && [...gatewayChain, ...productOwned].some(looksUpCache);
  const admit = [
    ...phaseSteps(gatewayChain, 'admit', deps.tracer),
    ...(productAdmit.size > 0 ? [admitProduct] : productless),
    ...(hitsSkipRespond ? [hitHeaders(respond)] : []),
  ];
  const place = (t: TemplatePolicy, product: string | null): Placement => ({ policy: t.policy, product, condition: t.condition?.source ?? null });
  const policies = [...new Set([...gatewayChain, ...productOwned, ...defaults])].map((t) => t.policy);
  // Only what runs is started: the policies no template lists were built to check them.
  for (const policy of policies) policy.start?.();
  return {
    extension,
    policies,
    phases: {
      intercept: orNull(phaseSteps(listed, 'intercept', deps.tracer)),
      authenticate: orNull(phaseSteps(credentials, 'authenticate', deps.tracer)),
      admit: orNull(admit),
      respond: orNull(respond),
    },
    placements: [
      ...gateway.map((t) => place(t, null)),
      ...[...byProduct].flatMap(([product, list]) => list.map((t) => place(t, product))),
      ...defaults.map((t) => place(t, null)),
    ],
    unlisted,
  };
}
