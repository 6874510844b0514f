// tollgate_* figures for API management, recorded once per request: requests by product, model and status, and
// policy violations by policy and fault code. Products, models and fault codes are bounded by configuration;
// apps, keys and developers never become labels (per-app figures belong to analytics).
import type { Registry } from 'prom-client';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { RequestContext } from '../gateway/context.js';
import { FastCounter } from './fast-metrics.js';

/**
 * Which policy kind raised an Apigee fault code, by the code's prefix (the first match wins, so a more specific
 * prefix comes before its namespace). Two codes are raised by two kinds each and count under the first kind named:
 * keymanagement.service.invalid_client-app_not_approved (VerifyAPIKey, OAuthV2) and
 * steps.sanitize.ClassifierUnavailable (SanitizeUserPrompt, SanitizeModelResponse).
 */
const POLICY_OF_FAULT: [prefix: string, policy: string][] = [
  ['policies.ratelimit.SpikeArrest', 'SpikeArrest'],
  ['policies.ratelimit.', 'Quota'],
  ['policies.llmtokenquota.', 'LLMTokenQuota'],
  ['policies.prompttokenlimit.', 'PromptTokenLimit'],
  ['steps.oauth.v2.', 'VerifyAPIKey'],
  ['oauth.v2.InsufficientScope', 'OAuthV2'],
  ['oauth.v2.InvalidAccessToken', 'OAuthV2'],
  ['oauth.v2.invalid_', 'OAuthV2'],
  ['oauth.v2.unsupported_grant_type', 'OAuthV2'],
  ['oauth.v2.', 'VerifyAPIKey'],
  ['keymanagement.service.invalid_access_token', 'OAuthV2'],
  ['keymanagement.service.access_token', 'OAuthV2'],
  ['keymanagement.service.InvalidAPICallAsNoApiProductMatchFound', 'OAuthV2'],
  ['keymanagement.service.', 'VerifyAPIKey'],
  ['steps.jwt.SigningFailed', 'GenerateJWT'],
  ['steps.jwt.', 'VerifyJWT'],
  ['steps.oasvalidation.', 'OASValidation'],
  ['accesscontrol.', 'AccessControl'],
  ['steps.cors.', 'CORS'],
  ['steps.assignmessage.', 'AssignMessage'],
  ['steps.keyvaluemapoperations.', 'KeyValueMapOperations'],
  ['steps.javascript.', 'JavaScript'],
  ['steps.servicecallout.', 'ServiceCallout'],
  ['steps.tokeninjection.', 'TokenInjection'],
  ['steps.sanitize.ModelResponse', 'SanitizeModelResponse'],
  ['steps.sanitize.', 'SanitizeUserPrompt'],
];

export function policyOfFault(code: string): string | undefined {
  for (const [prefix, policy] of POLICY_OF_FAULT) if (code.startsWith(prefix)) return policy;
  // Any other dotted code is a policy's too (a custom one); its namespace names it well enough.
  return code.includes('.') ? code.split('.').slice(0, -1).join('.') : undefined;
}

const UNSENT_STATUS: Record<string, number> = { client_closed: 499, shutting_down: 503 };

export class ApimMetrics {
  readonly #requests: FastCounter;
  readonly #violations: FastCounter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#requests = new FastCounter({ name: 'tollgate_requests_total', help: 'Requests by API product, model and status', labelNames: ['product', 'model', 'status'], registers });
    this.#violations = new FastCounter({ name: 'tollgate_policy_violations_total', help: 'Requests refused by a policy, by policy and fault code', labelNames: ['policy', 'fault_code'], registers });
  }

  /**
   * `knownModel`: whether ctx.model names a configured model. The model comes from the client's body, and a request
   * refused before model lookup (401, say) may carry any name: those count under model "" so that random names
   * cannot grow the series without bound.
   */
  finished(ctx: RequestContext, knownModel: boolean): void {
    // No status: nothing was sent, because the client hung up (counted as nginx's 499, "client closed request") or
    // because the shutdown grace ended first (503, as the requests it refused).
    this.#requests.labels(ctx.apim?.product?.name ?? '', knownModel ? ctx.model! : '', String(ctx.status ?? UNSENT_STATUS[ctx.errorCode ?? ''] ?? 0)).inc();
    const code = ctx.errorCode;
    if (!code) return;
    const policy = policyOfFault(code);
    if (policy) this.#violations.labels(policy, code).inc();
  }

  /** Drops the request series of models `config` no longer has (a reload removed them; their requests are over). */
  retain(config: RuntimeConfig): void {
    this.#requests.removeWhere(([, model]) => model !== '' && !config.models.has(model));
  }

  /** A request node:http refused before it became one of ours (headers too large, malformed, too slow, CONNECT). */
  refused(status: number): void {
    this.#requests.labels('', '', String(status)).inc();
  }
}
