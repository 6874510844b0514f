// The policy engine as the gateway sees it: GatewayHooks over one compiled flow, plus the self-service quota report.
// Build a new engine on every configuration load; requests in flight finish with the flow they started with.
import type { RequestContext } from '../gateway/context.js';
import { gatewayError, type FaultFormat } from '../gateway/errors.js';
import type { GatewayHooks } from '../gateway/hooks.js';
import type { Manifest } from '../config/manifest.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import { compileFlow, type CompiledFlow } from './flow.js';
import type { IdentitySource } from './identity.js';
import { quotaReport, type QuotaReport } from './quota-report.js';
import { registerBuiltins, type PolicyRegistry } from './registry.js';
import { runSteps } from './run-steps.js';
import type { ApimState, Policy } from './types.js';

export interface PolicyEngineOptions {
  manifests: readonly Manifest[];
  counters: CounterStore;
  identity: IdentitySource;
  logger?: Logger;
  /** Epoch milliseconds (default Date.now); injected by tests. */
  now?: () => number;
  registry?: PolicyRegistry;
}

export class PolicyEngine {
  /** For DataPlane.hooks: empty without an APIMExtensionPolicy, so a plain inference gateway pays nothing. */
  readonly hooks: GatewayHooks;
  readonly #flow: CompiledFlow | null;
  readonly #now: () => number;

  /** @throws ConfigError when the API-management manifests do not compile. */
  constructor(opts: PolicyEngineOptions) {
    this.#now = opts.now ?? Date.now;
    this.#flow = compileFlow(opts.manifests, opts.registry ?? registerBuiltins(), {
      counters: opts.counters,
      identity: opts.identity,
      logger: opts.logger ?? silentLogger,
      now: this.#now,
    });
    const flow = this.#flow;
    const format: FaultFormat = flow?.extension.faultFormat ?? 'openai';
    // Only the phases that have work are hooked, so the data plane skips the others with a null check.
    this.hooks = flow
      ? {
          ...(flow.authenticate && { authenticate: (ctx: RequestContext) => this.authenticate(ctx) }),
          ...(flow.admit && { admit: (ctx: RequestContext) => this.admit(ctx) }),
          complete: (ctx) => {
            if (ctx.apim?.settlers) void this.complete(ctx);
          },
          faultFormat: () => format,
        }
      : {};
  }

  /** Whether API management is on (an APIMExtensionPolicy exists). */
  get enabled(): boolean {
    return this.#flow !== null;
  }

  /** The policies in the order they run. */
  get policies(): readonly Policy[] {
    return this.#flow?.policies ?? [];
  }

  /** Requests let through uncounted because the counter store could not answer (failOpen). */
  get failedOpen(): number {
    return this.#flow?.counters.failedOpen ?? 0;
  }

  /** Credentials (401), before model lookup. */
  authenticate(ctx: RequestContext): void | Promise<void> {
    const flow = this.#flow;
    if (!flow?.authenticate) return;
    const state: ApimState = { admit: flow.admit };
    ctx.apim = state;
    return runSteps(flow.authenticate, ctx, state);
  }

  /** Entitlement (401), then limits (429), after model lookup. */
  admit(ctx: RequestContext): void | Promise<void> {
    const state = ctx.apim;
    if (state) return state.admit ? runSteps(state.admit, ctx, state) : undefined;
    const flow = this.#flow;
    // No state: this flow has no credential phase, or the configuration changed since the request's.
    if (flow?.authenticate) return this.#authenticateThenAdmit(ctx);
    if (flow?.admit) return runSteps(flow.admit, ctx, (ctx.apim = {}));
  }

  /** The response flow: reconciles what admission reserved. Resolves once every counter is settled. */
  async complete(ctx: RequestContext): Promise<void> {
    const settlers = ctx.apim?.settlers;
    if (settlers) await Promise.all(settlers.map((s) => s.settle(ctx)));
  }

  /** GET /v1/tollgate/quota: the caller's products and what is left of their quotas. */
  quotaReport(ctx: RequestContext): Promise<QuotaReport> {
    const flow = this.#flow;
    if (!flow?.authenticate) return Promise.reject(gatewayError('TG_ERR_ROUTE_NOT_FOUND', 'API keys are not in use on this gateway'));
    return quotaReport(ctx, flow.authenticate, flow.counters, this.#now());
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
