// Where each stored Responses API answer lives. A model server (vLLM with its response store) keeps a response in its
// own memory: a follow-up naming it (`previous_response_id`), or a GET, DELETE or cancel of it, must reach that very
// server. Any other endpoint of the pool answers 404, so a pool of N endpoints loses the conversation N-1 times in N.
import { clipName } from '../lib/clip-name.js';
import type { RequestContext } from './context.js';
import { gatewayError } from './errors.js';
import { keyedTenant } from './tenant.js';

/** The endpoint that answered a stored response, and who may reach it again. */
export interface StoredResponse {
  /** host:port of the endpoint (EndpointConfig.address), in whichever pool or route lists it now. */
  address: string;
  /** The client's model name: the follow-ups' and reads' entitlement is checked against it. */
  model: string;
  /** The app that created it (`app:<id>`), when API keys identified one; others are told it does not exist. */
  owner?: string;
  /**
   * Its input and output tokens as its server counted them: what a follow-up's server puts before the follow-up's own
   * input (and bills as its input). Absent until its usage is known.
   */
  tokens?: number;
}

/** The operations on one stored response: `/v1/responses/{id}` and its two sub-resources. */
export type StoredResponseAction = 'retrieve' | 'delete' | 'cancel' | 'input_items';

export interface StoredResponseRequest {
  id: string;
  action: StoredResponseAction;
}

/**
 * The ids tollgate routes: those of OpenAI and vLLM (`resp_` + hex) and any other a client can write in a path
 * without escaping; an answer's id of another form is not remembered, so it is never routed or owned.
 */
const RESPONSE_ID = /^[A-Za-z0-9_-]{1,128}$/;
const UNDER_RESPONSES = '/v1/responses/';
/**
 * OpenAI's operations below /v1/responses/ that name no stored response (the SDK's responses.inputTokens.count() and
 * responses.compact()): paths an HTTPRoute passes on as any other, never ids.
 */
const NOT_IDS = new Set(['input_tokens', 'compact']);

/** Whether `id` is one tollgate routes and owns (an answer's id of another form never is). */
export const isResponseId = (id: string): boolean => RESPONSE_ID.test(id);

/** A path's segments below /v1/responses/, percent-decoded as a server reads them; null for a malformed escape. */
function segmentsBelow(path: string): string[] | null | undefined {
  if (!path.startsWith(UNDER_RESPONSES)) return undefined;
  try {
    return path.slice(UNDER_RESPONSES.length).split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
}

/**
 * Whether `path` is one of OpenAI's operations below /v1/responses/ (NOT_IDS), which take a `previous_response_id`:
 * read as the server reads it, so that an escaped name (`input%5Ftokens`) is the same operation, checked the same.
 */
export function isResponsesOperation(path: string): boolean {
  const segments = segmentsBelow(path);
  return segments?.length === 1 && NOT_IDS.has(segments[0]);
}

/**
 * A path below /v1/responses/ as the model server reads it, its segments percent-decoded (a server decodes
 * `resp%5Fabc` to `resp_abc`: matched undecoded, it passed any route's URL backend without the owner check); `null`
 * for one that names no stored response (another sub-resource, a malformed escape, an id of another form); undefined
 * for one not below it, or one of OpenAI's other operations there (NOT_IDS).
 */
function responsePath(path: string): { id: string; sub: string | undefined } | null | undefined {
  const segments = segmentsBelow(path);
  if (!segments) return segments;
  const [id, sub] = segments;
  if (NOT_IDS.has(id)) return segments.length === 1 ? undefined : null;
  if (segments.length > 2 || !RESPONSE_ID.test(id) || (sub !== undefined && sub !== 'cancel' && sub !== 'input_items')) return null;
  return { id, sub };
}

/**
 * What a request on a stored response asks; undefined when its path is not below /v1/responses/, or is one of
 * OpenAI's operations there (NOT_IDS, whose previous_response_id is checked as a follow-up's is). Throws 404 for a
 * path there that names no stored response and 405 for a method its resource does not take: nothing else below
 * /v1/responses/ is passed on unchecked, whichever route takes it.
 */
export function storedResponseRequest(method: string, path: string): StoredResponseRequest | undefined {
  const at = responsePath(path);
  if (at === undefined) return undefined;
  if (at === null) throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', `No route for ${method} ${clipName(path)}`);
  const action = actionOf(method, at.sub);
  if (!action) {
    const allow = at.sub === 'cancel' ? 'POST' : at.sub === 'input_items' ? 'GET, HEAD' : 'GET, HEAD, DELETE';
    throw gatewayError('TG_ERR_METHOD_NOT_ALLOWED', `${clipName(path)} accepts ${allow} only`, { allow });
  }
  return { id: at.id, action };
}

function actionOf(method: string, sub: string | undefined): StoredResponseAction | undefined {
  const read = method === 'GET' || method === 'HEAD';
  if (sub === 'cancel') return method === 'POST' ? 'cancel' : undefined;
  if (sub === 'input_items') return read ? 'input_items' : undefined;
  return read ? 'retrieve' : method === 'DELETE' ? 'delete' : undefined;
}

/**
 * Where a stored response's creation record says it was made, and its usage (AnalyticsRecords.findResponse, or a
 * spooled record's row); absent is unknown, as null is.
 */
export interface RecordedResponse {
  endpoint?: string | null;
  app_id?: string | null;
  model?: string | null;
  /** bigint columns: a string on PostgreSQL. */
  input_tokens?: number | string | null;
  output_tokens?: number | string | null;
}

/** Finds the creation record of a stored response, for one this process did not see made (another replica's, or before a restart). */
export type FindRecordedResponse = (id: string) => Promise<RecordedResponse | undefined>;

/**
 * Whether `ctx` may reach `stored`: a response an app created is only its own. Without keys (no owner recorded, or
 * none identified now) it is as reachable as on the model server itself, by whoever holds its unguessable id.
 */
export function mayReach(stored: StoredResponse, ctx: RequestContext): boolean {
  return stored.owner === undefined || stored.owner === keyedTenant(ctx);
}

/**
 * Response id → the endpoint holding it, least recently used dropped first once `maxEntries` are held (a model
 * server's own store forgets too: what is dropped here is routed as though new, and its server says whether it
 * still has it).
 */
export class StoredResponses {
  readonly #entries = new Map<string, StoredResponse>();

  get size(): number {
    return this.#entries.size;
  }

  remember(id: string, stored: StoredResponse, maxEntries: number): void {
    this.#entries.delete(id);
    if (maxEntries > 0) this.#entries.set(id, stored);
    // A lowered limit (a reload, to 0 as well) is reached again over the next insertions, a few at a time, not in one
    // long loop.
    for (let over = this.#entries.size - maxEntries, n = 0; over > 0 && n < 16; over--, n++) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** The holder of `id`, now the most recently used; undefined when not known here. */
  get(id: string): StoredResponse | undefined {
    const stored = this.#entries.get(id);
    if (stored) {
      this.#entries.delete(id);
      this.#entries.set(id, stored);
    }
    return stored;
  }

  forget(id: string): void {
    this.#entries.delete(id);
  }
}

/** Whether `ctx` is a Responses API creation whose answer the model server stores: any not sent with `store: false`. */
export function createsStoredResponse(ctx: RequestContext): boolean {
  return ctx.operation === 'responses' && ctx.body?.store !== false;
}

/**
 * Where the id of the answer to `ctx` goes (ctx.responseId) when it is one a model server stores: a successful
 * creation of a stored response. Undefined otherwise, and the answer is not searched for one.
 */
export function responseIdSink(ctx: RequestContext, status: number): ((id: string) => void) | undefined {
  if (!createsStoredResponse(ctx) || status < 200 || status >= 300) return undefined;
  // An id no client could name in a path is none (and never takes room in the map or the records).
  return (id) => {
    if (!RESPONSE_ID.test(id)) return;
    ctx.responseId = id;
    ctx.onStoredResponse?.(ctx);
  };
}
