// Routing by stored response (stored-responses.ts): which endpoint a follow-up or a read goes to, who may reach it,
// and learning where each new one lives. Endpoints are matched by address, whatever pool or route lists them now: a
// pool renamed on reload still holds what its servers store.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EndpointConfig, RuntimeConfig } from '../config/runtime-config.js';
import type { Logger } from '../lib/logger.js';
import type { RequestContext } from './context.js';
import { GatewayError, gatewayError, type ErrorResponse } from './errors.js';
import { MISS_REUSE_MS, RecordedResponses } from './recorded-responses.js';
import { isResponseId, mayReach, StoredResponses, type FindRecordedResponse, type RecordedResponse, type StoredResponse } from './stored-responses.js';
import { appTenant, keyedTenant } from './tenant.js';

/**
 * The 404 for an id this gateway cannot route, or another app's, or one not known yet that API keys keep from the
 * servers: vLLM's own (`_make_not_found_error`, whose ErrorInfo `code` is the HTTP status) to the byte, whatever the
 * fault format, so that an app cannot tell another app's id (answered here) from an unknown one (answered by the
 * model server). Recorded as `response_not_found`.
 */
class ResponseNotFound extends GatewayError {
  constructor(id: string) {
    super(404, 'invalid_request_error', 'response_not_found', `Response with id '${id}' not found.`, {}, 'response_id');
  }

  override toResponse(): ErrorResponse {
    const error = { message: this.message, type: this.type, param: this.param, code: this.status };
    return { status: this.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error }) };
  }
}

export const responseNotFound = (id: string): GatewayError => new ResponseNotFound(id);

/** Where an id was looked for: found, not known here or in the records, or the records could not be read. */
export type Lookup = { found: StoredResponse } | { found: undefined; failed: boolean };

/**
 * The address of a response whose endpoint is not known (made through an ext_proc policy decision point alone, whose
 * routing is Envoy's): no pool or route lists it, so the response is only owned, never routed to.
 */
const UNKNOWN_ADDRESS = '';

/**
 * How long after its creation's answer another replica's record of a response may take to reach the database,
 * beyond the records' flushInterval: the batch's insert and commit.
 */
const RECORDS_LAG_MS = 500;

/** A URL backend of an HTTPRoute at `address`. */
function routeUrl(address: string, config: RuntimeConfig): EndpointConfig | undefined {
  for (const rule of config.routes) {
    const backend = rule.backends?.values.find((b) => b.kind === 'url' && b.address === address);
    if (backend?.kind === 'url') return { url: backend.url, address: backend.address };
  }
  return undefined;
}

/** A creation record as routing holds it; undefined for one that neither routes nor protects anything. */
function storedOf(recorded: RecordedResponse): StoredResponse | undefined {
  // A policy decision point alone records no endpoint (Envoy's picker chose it): its owner still keeps other apps out.
  const { model, endpoint, app_id: app, input_tokens: input, output_tokens: output } = recorded;
  if (model == null || (endpoint == null && app == null)) return undefined;
  const stored: StoredResponse = { address: endpoint ?? UNKNOWN_ADDRESS, model, owner: app == null ? undefined : appTenant(app) };
  if (input != null) stored.tokens = Number(input) + Number(output ?? 0);
  return stored;
}

export class StoredResponseRouting {
  readonly responses = new StoredResponses();
  readonly #config: () => RuntimeConfig;
  readonly #records: RecordedResponses | undefined;
  readonly #logger: Logger;

  constructor(config: () => RuntimeConfig, find: FindRecordedResponse | undefined, logger: Logger) {
    this.#config = config;
    this.#records = find && new RecordedResponses(find, logger);
    this.#logger = logger;
  }

  /**
   * Where `id` lives: as this process saw it made, else as its creation record says (then kept here), asked for
   * `tenant` (RecordedResponses). An id found nowhere is looked for again until another replica's record of it would
   * have reached the database (flushInterval, RECORDS_LAG_MS): a response made there a moment ago is found, not taken
   * for unknown. Nowhere known with `storedResponses: 0`, which turns the routing off.
   */
  async lookup(id: string, tenant = ''): Promise<Lookup> {
    const config = this.#config();
    const maxEntries = config.settings.scheduler.storedResponses;
    if (maxEntries === 0) return { found: undefined, failed: false };
    const records = this.#records;
    const deadline = performance.now() + config.settings.analytics.flushInterval + RECORDS_LAG_MS;
    for (;;) {
      // Looked for here again after each wait: it may have been made here, or found by another request, meanwhile.
      const seen = this.responses.get(id);
      if (seen) return { found: seen };
      if (!records) return { found: undefined, failed: false };
      const { recorded, failed } = await records.find(id, tenant);
      if (failed) return { found: undefined, failed: true };
      if (recorded) {
        const stored = this.responses.get(id) ?? storedOf(recorded);
        if (stored) this.responses.remember(id, stored, maxEntries);
        return stored ? { found: stored } : { found: undefined, failed: false };
      }
      const left = deadline - performance.now();
      if (left <= 0) return { found: undefined, failed: false };
      await sleep(Math.min(MISS_REUSE_MS, left));
    }
  }

  /**
   * A creation record an earlier process left in its analytics spool (AnalyticsPipeline.onBacklogResponse): known
   * here before any request, as the records in the database are not until the spool is replayed into it. An id
   * known already keeps what is known of it (the first creation owns it).
   */
  recall(id: string, recorded: RecordedResponse): void {
    const maxEntries = this.#config().settings.scheduler.storedResponses;
    const stored = storedOf(recorded);
    if (stored && isResponseId(id) && !this.responses.get(id)) this.responses.remember(id, stored, maxEntries);
  }

  /**
   * What may be said of a lookup to this caller once known: the stored response it may reach, or undefined for one
   * not known; throws 404 for another app's, and with API keys 503 when the records could not be read and 404 for
   * one known nowhere. An id not known may be another app's whose record has not reached this replica (or one a
   * crashed process spooled): sent on, picking freely could hand another app's conversation over, and without keys
   * there is none to protect. An ext_proc endpoint picker alone knows no caller: it routes, and the policy decision
   * point in its chain checks the owner.
   */
  reachable(lookup: Lookup, id: string, ctx: RequestContext): StoredResponse | undefined {
    const held = lookup.found;
    if (held) {
      if (ctx.stages !== 'picker' && !mayReach(held, ctx)) throw responseNotFound(id);
      return held;
    }
    if (keyedTenant(ctx) === undefined || this.#config().settings.scheduler.storedResponses === 0) return undefined;
    if (lookup.failed) throw gatewayError('TG_ERR_RESPONSE_LOOKUP_FAILED');
    throw responseNotFound(id);
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
   * What that response brings in is a creation's history (ctx.historyTokens), for its token estimates; OpenAI's
   * other operations that name one (input_tokens, compact) are routed the same way.
   */
  async continueAt(ctx: RequestContext, previousId: string): Promise<void> {
    // An id of a form no answer's id is remembered in is no app's: its server says whether it has it.
    if (!isResponseId(previousId)) return;
    const held = this.reachable(await this.lookup(previousId, keyedTenant(ctx) ?? ''), previousId, ctx);
    if (!held) return;
    if (held.tokens !== undefined && ctx.operation === 'responses') ctx.historyTokens = held.tokens;
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
   * Learns where a response the model server stored lives (as soon as its id is read, ctx.onStoredResponse, and once
   * its answer ends, with its usage), and forgets one it deleted. An id this process holds for
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
      const stored: StoredResponse = { address: ctx.endpoint?.address ?? UNKNOWN_ADDRESS, model: ctx.model, owner };
      // Known once the answer ends (it is learnt as soon as its id is read, then again here).
      if (ctx.usage) stored.tokens = ctx.usage.inputTokens + ctx.usage.outputTokens;
      this.responses.remember(ctx.responseId, stored, this.#config().settings.scheduler.storedResponses);
    } else if (ctx.storedResponse?.action === 'delete' && ctx.upstreamStatus !== undefined && ctx.upstreamStatus < 300) {
      this.responses.forget(ctx.storedResponse.id);
    }
  }
}
