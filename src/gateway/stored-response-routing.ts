// Routing by stored response (stored-responses.ts): which endpoint a follow-up or a read goes to, who may reach it,
// and learning where each new one lives. Endpoints are matched by address, whatever pool or route lists them now: a
// pool renamed on reload still holds what its servers store.
import type { EndpointConfig, RuntimeConfig } from '../config/runtime-config.js';
import { clipName } from '../lib/clip-name.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import type { RequestContext } from './context.js';
import { gatewayError } from './errors.js';
import { mayReach, StoredResponses, type FindRecordedResponse, type StoredResponse } from './stored-responses.js';
import { appTenant, keyedTenant } from './tenant.js';

/**
 * The 404 for an id this gateway cannot route, or another app's: worded as vLLM words its own, so that an app cannot
 * tell another app's id (answered here) from an unknown one (answered by the model server).
 */
export const responseNotFound = (id: string) => gatewayError('TG_ERR_RESPONSE_NOT_FOUND', `Response with id '${clipName(id)}' not found.`);

/** Where an id was looked for: found, not known here or in the records, or the records could not be read. */
export type Lookup = { found: StoredResponse } | { found: undefined; failed: boolean };

/**
 * The address of a response whose endpoint is not known (made through an ext_proc policy decision point alone, whose
 * routing is Envoy's): no pool or route lists it, so the response is only owned, never routed to.
 */
const UNKNOWN_ADDRESS = '';

/** A URL backend of an HTTPRoute at `address`. */
function routeUrl(address: string, config: RuntimeConfig): EndpointConfig | undefined {
  for (const rule of config.routes) {
    const backend = rule.backends?.values.find((b) => b.kind === 'url' && b.address === address);
    if (backend?.kind === 'url') return { url: backend.url, address: backend.address };
  }
  return undefined;
}

/**
 * Records queries at once: one per unknown id, which anyone can send, so a flood waits for none and fails fast. A
 * query its request gave up on still counts until it ends: it cannot be cancelled and holds a database connection,
 * so against a stalled table a flood would otherwise take the whole pool.
 */
const MAX_LOOKUPS = 8;
/** A records lookup slower than this counts as failed (the database stalled): its request is not held longer. */
const LOOKUP_TIMEOUT_MS = 2000;

export class StoredResponseRouting {
  readonly responses = new StoredResponses();
  readonly #config: () => RuntimeConfig;
  readonly #find: FindRecordedResponse | undefined;
  readonly #logger: Logger;
  #lookups = 0;

  constructor(config: () => RuntimeConfig, find: FindRecordedResponse | undefined, logger: Logger) {
    this.#config = config;
    this.#find = find;
    this.#logger = logger;
  }

  /**
   * Where `id` lives: as this process saw it made, else as its creation record says (then kept here). Nowhere known
   * with `storedResponses: 0`, which turns the routing off.
   */
  async lookup(id: string): Promise<Lookup> {
    const maxEntries = this.#config().settings.scheduler.storedResponses;
    if (maxEntries === 0) return { found: undefined, failed: false };
    const seen = this.responses.get(id);
    if (seen) return { found: seen };
    if (!this.#find) return { found: undefined, failed: false };
    if (this.#lookups >= MAX_LOOKUPS) return { found: undefined, failed: true };
    this.#lookups++;
    let recorded;
    try {
      recorded = await withTimeout(this.#find(id).finally(() => this.#lookups--), LOOKUP_TIMEOUT_MS, 'a stored-response lookup');
    } catch (err) {
      this.#logger.warn({ err }, 'could not look up a stored response in the usage records');
      return { found: undefined, failed: true };
    }
    // A policy decision point alone records no endpoint (Envoy's picker chose it): its owner still keeps other apps out.
    if (!recorded || recorded.model === null || (recorded.endpoint === null && recorded.app_id === null)) return { found: undefined, failed: false };
    const stored: StoredResponse = { address: recorded.endpoint ?? UNKNOWN_ADDRESS, model: recorded.model, owner: recorded.app_id === null ? undefined : appTenant(recorded.app_id) };
    this.responses.remember(id, stored, maxEntries);
    return { found: stored };
  }

  /**
   * What may be said of a lookup to this caller once known: the stored response it may reach, or undefined for one
   * not known; throws 404 for another app's, and 503 when the records could not be read and API keys are in use
   * (picking freely could hand another app's conversation on; without keys there is none to protect). An ext_proc
   * endpoint picker alone knows no caller: it routes, and the policy decision point in its chain checks the owner.
   */
  reachable(lookup: Lookup, id: string, ctx: RequestContext): StoredResponse | undefined {
    const held = lookup.found;
    if (held) {
      if (ctx.stages !== 'picker' && !mayReach(held, ctx)) throw responseNotFound(id);
      return held;
    }
    if (lookup.failed && keyedTenant(ctx) !== undefined) throw gatewayError('TG_ERR_RESPONSE_LOOKUP_FAILED');
    return undefined;
  }

  /** The endpoint holding `held`, while a pool or an HTTPRoute of `config` still lists its address. */
  holder(held: StoredResponse, config: RuntimeConfig): EndpointConfig | undefined {
    for (const pool of config.pools.values()) {
      const ep = pool.endpoints.find((e) => e.address === held.address);
      if (ep) return ep;
    }
    return routeUrl(held.address, config);
  }

  /**
   * A follow-up (`previous_response_id`) goes to the endpoint holding the response it continues, when its pool (or
   * its route) can send it there; otherwise it is picked as any request is, and the server says whether it has it.
   */
  async continueAt(ctx: RequestContext, previousId: string): Promise<void> {
    const held = this.reachable(await this.lookup(previousId), previousId, ctx);
    if (!held) return;
    const backend = ctx.backend;
    if (backend?.kind === 'url') {
      // Only to another route URL: a pool endpoint is reached through its pool (flow control, the model it serves).
      const at = routeUrl(held.address, this.#config());
      if (at && backend.address !== at.address) ctx.backend = { kind: 'url', url: at.url, address: at.address };
      return;
    }
    if (!ctx.modelConfig!.pool.endpoints.some((ep) => ep.address === held.address)) return;
    // Within an ext_proc subset hint that leaves it out, nothing can serve it: the pick fails with 503.
    ctx.subset = !ctx.subset || ctx.subset.has(held.address) ? new Set([held.address]) : new Set();
  }

  /**
   * Learns where a response the model server stored lives, and forgets one it deleted. An id this process holds for
   * another app keeps that owner: a server that lets the client choose ids (vLLM's `request_id`) must not let one app
   * take over another's (the records, which other replicas read, answer with the first creation too).
   */
  track(ctx: RequestContext): void {
    if (ctx.responseId !== undefined && ctx.model !== undefined) {
      const owner = keyedTenant(ctx);
      // Without an endpoint (an ext_proc policy decision point that Envoy did not tell which one served) the owner
      // alone is kept: it is what keeps other apps out.
      if (!ctx.endpoint && owner === undefined) return;
      const known = this.responses.get(ctx.responseId);
      if (known && known.owner !== owner) {
        this.#logger.warn({ requestId: ctx.id, responseId: ctx.responseId }, 'a model server answered with the id of a response another app stored; its first owner keeps it');
        return;
      }
      this.responses.remember(ctx.responseId, { address: ctx.endpoint?.address ?? UNKNOWN_ADDRESS, model: ctx.model, owner }, this.#config().settings.scheduler.storedResponses);
    } else if (ctx.storedResponse?.action === 'delete' && ctx.upstreamStatus !== undefined && ctx.upstreamStatus < 300) {
      this.responses.forget(ctx.storedResponse.id);
    }
  }
}
