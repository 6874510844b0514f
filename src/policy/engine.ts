// The policy engine as the gateway sees it: GatewayHooks over one compiled flow, plus the self-service quota report.
// Build a new engine on every configuration load; requests in flight finish with the flow they started with.
import type { CacheResources } from './caching/cache-resources.js';
import type { RequestContext } from '../gateway/context.js';
import { gatewayError, type FaultFormat } from '../gateway/errors.js';
import type { GatewayHooks, ResponseFlow } from '../gateway/hooks.js';
import type { Manifest } from '../config/manifest.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import { compileFlow, type CompiledFlow, type FlowDeps } from './flow.js';
import type { IdentitySource } from './identity.js';
import { quotaReport, type QuotaReport } from './quota-report.js';
import { showRefundedTokens } from './rate-limit-headers.js';
import { registerBuiltins, type PolicyRegistry } from './registry.js';
import { runRespond, runSteps } from './run-steps.js';
import type { ApimState, KvmLookup, Policy } from './types.js';
import type { PromptCalibration } from './prompt-calibration.js';
import type { TokensInFlight } from './tokens-in-flight.js';
import { credentialSources, type CredentialSources } from './credential-sources.js';

export interface PolicyEngineOptions {
  manifests: readonly Manifest[];
  counters: CounterStore;
  identity: IdentitySource;
  logger?: Logger;
  /** Epoch milliseconds (default Date.now); injected by tests. */
  now?: () => number;
  registry?: PolicyRegistry;
  /** Key-value maps for KeyValueMapOperations (api-management.ts wires the store's snapshot). */
  kvm?: KvmLookup;
  caches?: CacheResources;
  promptCalibration?: PromptCalibration;
  tokensInFlight?: TokensInFlight;
  /** Told of every counter-store call the store could not answer (api-management.ts counts them in a metric). */
  onCounterError?: FlowDeps['onCounterError'];
  /** Gives each request policy a span of its own when its policySpans is on. */
  tracer?: FlowDeps['tracer'];
}

export class PolicyEngine {
  /** For DataPlane.hooks: empty without an APIMExtensionPolicy, so a plain inference gateway pays nothing. */
  readonly hooks: GatewayHooks;
  readonly #flow: CompiledFlow | null;
  readonly #now: () => number;
  readonly #credentials: CredentialSources | undefined;

  /** @throws ConfigError when the API-management manifests do not compile. */
  constructor(opts: PolicyEngineOptions) {
    this.#now = opts.now ?? Date.now;
    this.#flow = compileFlow(opts.manifests, opts.registry ?? registerBuiltins(), {
      counters: opts.counters,
      identity: opts.identity,
      logger: opts.logger ?? silentLogger,
      now: this.#now,
      kvm: opts.kvm,
      caches: opts.caches,
      promptCalibration: opts.promptCalibration,
      tokensInFlight: opts.tokensInFlight,
      onCounterError: opts.onCounterError,
      tracer: opts.tracer,
    });
    const flow = this.#flow;
    const format: FaultFormat = flow?.extension.faultFormat ?? 'openai';
    const phases = flow?.phases;
    const sources = phases && credentialSources(opts.manifests);
    // Authorization and x-api-key are withheld anyway: only sources beyond those are named.
    const credentials = sources && (sources.headers.length > 0 || sources.query.size > 0) ? sources : undefined;
    this.#credentials = credentials;
    // Only the phases that have work are hooked, so the data plane skips the others with a null check.
    this.hooks = phases
      ? {
          ...(phases.intercept && { intercept: (ctx: RequestContext) => this.intercept(ctx) }),
          ...((phases.authenticate || credentials) && { authenticate: (ctx: RequestContext) => this.authenticate(ctx) }),
          ...(phases.admit && { admit: (ctx: RequestContext) => this.admit(ctx) }),
          ...(phases.respond && { respond: (ctx: RequestContext, status: number) => this.respond(ctx, status) }),
          complete: (ctx) => {
            if (ctx.apim?.settlers) void this.complete(ctx);
          },
          // Token quotas reserve in the admission phase.
          ...(phases.admit && {
            refused: (ctx: RequestContext) => {
              if (ctx.apim) showRefundedTokens(ctx, ctx.apim);
            },
          }),
          faultFormat: () => format,
          ...(credentials && { credentialSources: credentials }),
        }
      : {};
  }

  /** Whether API management is on (an APIMExtensionPolicy exists). */
  get enabled(): boolean {
    return this.#flow !== null;
  }

  /** The APIMExtensionPolicy's failOpen: whether requests go on, uncounted, while the counter store cannot answer. */
  get failsOpen(): boolean {
    return this.#flow?.extension.failOpen ?? false;
  }

  /** The policies in the order they run. */
  get policies(): readonly Policy[] {
    return this.#flow?.policies ?? [];
  }

  /** Why policies the admin API stored, and no template lists, cannot be built: logged here, refused by an apply. */
  get unlistedProblems(): readonly string[] {
    return this.#flow?.unlisted ?? [];
  }

  /** Before routing and the body: may answer through `ctx.directResponse` (a preflight) or refuse (IP access). */
  intercept(ctx: RequestContext): void | Promise<void> {
    const phases = this.#flow?.phases;
    if (!phases?.intercept) return;
    // The request's state starts here, so every later phase runs the flow that saw it first.
    const state: ApimState = { phases };
    ctx.apim = state;
    return runSteps(phases.intercept, ctx, state);
  }

  /** Credentials (401), before model lookup. */
  authenticate(ctx: RequestContext): void | Promise<void> {
    // Every source, not only those of the policies that run: one whose template condition skips it for this request
    // would otherwise send the client's key or JWT to the model server.
    this.#credentials?.withhold(ctx);
    const state = ctx.apim ?? this.#newState(ctx);
    const steps = state?.phases?.authenticate;
    if (state && steps) return runSteps(steps, ctx, state);
  }

  /** Entitlement (401), then limits (429), after model lookup. */
  admit(ctx: RequestContext): void | Promise<void> {
    const state = ctx.apim;
    if (state?.phases) return state.phases.admit ? runSteps(state.phases.admit, ctx, state) : undefined;
    const phases = this.#flow?.phases;
    // No state: this flow has no earlier phase, or the configuration changed since the request's.
    if (phases?.authenticate) return this.#authenticateThenAdmit(ctx);
    if (phases?.admit) return runSteps(phases.admit, ctx, this.#newState(ctx)!);
  }

  /** When the model server's answer starts: every policy's part of the response flow, chained in order. */
  respond(ctx: RequestContext, status: number): ResponseFlow | undefined {
    const state = ctx.apim ?? this.#newState(ctx);
    const steps = state?.phases?.respond;
    return state && steps ? runRespond(steps, ctx, state, status) : undefined;
  }

  /**
   * The response flow: reconciles what admission reserved. Done when it returns, or once its promise resolves: on a
   * store in this process, every settlement is.
   */
  complete(ctx: RequestContext): void | Promise<void> {
    const settlers = ctx.apim?.settlers;
    if (!settlers) return;
    let pending: Promise<void>[] | undefined;
    for (const settler of settlers) {
      const settling = settler.settle(ctx);
      if (settling) (pending ??= []).push(settling);
    }
    if (pending) return Promise.all(pending).then(() => undefined);
  }

  /** GET /v1/tollgate/quota: the caller's products and what is left of their quotas. */
  quotaReport(ctx: RequestContext): Promise<QuotaReport> {
    const flow = this.#flow;
    if (!flow?.phases.authenticate) return Promise.reject(gatewayError('TG_ERR_ROUTE_NOT_FOUND', 'API keys are not in use on this gateway'));
    return quotaReport(ctx, flow, this.#now());
  }

  /** State for a request this flow sees first (undefined without API management). */
  #newState(ctx: RequestContext): ApimState | undefined {
    const phases = this.#flow?.phases;
    return phases && (ctx.apim = { phases });
  }

  async #authenticateThenAdmit(ctx: RequestContext): Promise<void> {
    await this.authenticate(ctx);
    await this.admit(ctx);
  }
}

/**
 * @example
 * const engine = createPolicyEngine({ manifests: config.manifests, counters, identity, logger });
 * dataPlane.hooks = engine.hooks;
 */
export function createPolicyEngine(opts: PolicyEngineOptions): PolicyEngine {
  return new PolicyEngine(opts);
}
