// What Envoy is told to do with a request tollgate let through: the endpoint picker's destination (header and
// envoy.lb metadata, as the Inference Extension's protocol has it), the policy decision point's identity headers and
// upstream header changes, credentials and routing headers removed, and the rewritten body.
import { upstreamUrl, type RequestContext } from '../gateway/context.js';
import type { DataPlane } from '../gateway/data-plane.js';
import { serializeBody } from '../gateway/body-serialize.js';
import { IDENTITY_HEADERS, identityHeaderValues } from '../gateway/identity-headers.js';
import { OBJECTIVE_HEADER, FAIRNESS_HEADER } from '../gateway/resolve-model.js';
import { MutationBuilder } from './headers.js';
import type { CommonResponse, PbStruct } from './messages.js';
import type { Outcome } from './request-pipeline.js';
import { toStruct } from './struct.js';

export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
export const DESTINATION_NAMESPACE = 'envoy.lb';
export const SERVED_KEY = 'x-gateway-destination-endpoint-served';
export const SUBSET_NAMESPACE = 'envoy.lb.subset_hint';
export const SUBSET_KEY = 'x-gateway-destination-endpoint-subset';

export interface Roles {
  /** Policy decision point: API management's verdict, identity headers, credentials removed. */
  pdp: boolean;
  /** Endpoint picker: model rewrite and the destination endpoint. */
  epp: boolean;
}

/**
 * What the model server must not see: the client's credentials and its own copies of the identity headers (pdp), the
 * picker's own inputs (epp). Sent in the request_headers answer, the only one whose header changes Envoy applies in
 * every body mode (not a STREAMED body's), and again in the decision. And what only the picker may say: a client's
 * own destination header, answered in the request_headers answer, would route the request wherever it names (Envoy
 * routes on the headers answer in STREAMED mode; an ORIGINAL_DST cluster reads the header) whenever the picker's
 * value does not replace it. Envoy applies removals before sets, so the picker's value and the identity headers
 * still go out in the same answer. A listener that is not the picker leaves the header alone: it may come after the
 * picker in Envoy's filter chain.
 */
export function removedHeaders(roles: Roles, into: MutationBuilder): MutationBuilder {
  if (roles.pdp) {
    into.remove('authorization').remove('x-api-key');
    for (const name of IDENTITY_HEADERS) into.remove(name);
  }
  if (roles.epp) into.remove(OBJECTIVE_HEADER).remove(FAIRNESS_HEADER).remove(DESTINATION_HEADER).remove(SERVED_KEY);
  return into;
}

/**
 * The answer to the headers of a request whose body follows. `headersGoNow`: Envoy sends the headers upstream with
 * it and applies no header change from a later answer (request_body_mode STREAMED or NONE), so the decision's
 * `accept-encoding: identity` is asked for now, and a policy decision point withholds now every header and query
 * parameter a credential policy may read its credential from, before any policy has run.
 */
export function requestHeadersAnswer(ctx: RequestContext, roles: Roles, raw: boolean, headersGoNow: boolean): CommonResponse {
  const headers = removedHeaders(roles, new MutationBuilder(raw));
  if (headersGoNow) headers.set('accept-encoding', 'identity');
  const sources = ctx.hooks!.credentialSources;
  if (roles.pdp && headersGoNow && sources) {
    for (const name of sources.headers) if (ctx.headers[name] !== undefined) headers.remove(name);
    if (sources.query.size > 0 && ctx.url.includes('?')) {
      ctx.withheldQuery = new Set(sources.query);
      const path = upstreamUrl(ctx);
      if (path !== ctx.url) headers.set(':path', path);
    }
  }
  return { header_mutation: headers.build() };
}

export interface RequestAnswer {
  response: CommonResponse;
  dynamic_metadata?: PbStruct;
}

/**
 * `wholeBody`: earlier chunks were held back (cleared), so this answer must carry the entire body even when
 * nothing changed it.
 */
export function requestAnswer(dp: DataPlane, ctx: RequestContext, outcome: Exclude<Outcome, { kind: 'reply' }>, roles: Roles, raw: boolean, wholeBody: boolean): RequestAnswer {
  const headers = removedHeaders(roles, new MutationBuilder(raw));
  headers.set('x-request-id', ctx.id);
  // As the built-in data plane does: the answer's usage (token quotas, analytics) and response policies need it
  // uncompressed; Envoy's own compressor filter can still compress it for the client.
  headers.set('accept-encoding', 'identity');
  const answer: RequestAnswer = { response: {} };
  if (roles.epp && outcome.kind !== 'admitted') {
    const endpoints = outcome.kind === 'pick' ? outcome.pick.endpoints : outcome.endpoints;
    const destination = endpoints.map((e) => e.address).join(',');
    headers.set(DESTINATION_HEADER, destination);
    answer.dynamic_metadata = toStruct({ [DESTINATION_NAMESPACE]: { [DESTINATION_HEADER]: destination } });
    answer.response.clear_route_cache = true;
  }
  if (roles.pdp) identityHeaders(ctx, headers);
  // A query a policy edited (AssignMessage, a credential read from a query parameter): Envoy lets :path be set.
  if (roles.pdp && (ctx.urlChanged || ctx.withheldQuery)) headers.set(':path', upstreamUrl(ctx));
  let body: Buffer | null = null;
  if (ctx.bodyChanged && ctx.body) {
    // A policy decision point alone leaves the model name to the picker that routes the request.
    body = roles.epp ? dp.upstreamBody(ctx) : serializeBody(ctx.body, ctx.rawBody);
    headers.set('content-length', String(body!.length));
  } else if (wholeBody) body = ctx.rawBody ?? Buffer.alloc(0);
  if (body) answer.response.body_mutation = { body };
  answer.response.header_mutation = headers.build();
  return answer;
}

/** Who is calling, for the filters and servers behind Envoy (removedHeaders took out a client's own copies). */
function identityHeaders(ctx: RequestContext, headers: MutationBuilder): void {
  for (const [name, v] of identityHeaderValues(ctx)) if (v !== undefined) headers.set(name, v);
  if (!ctx.upstreamHeaders) return;
  for (const name in ctx.upstreamHeaders) {
    const v = ctx.upstreamHeaders[name];
    if (v === null) headers.remove(name);
    else headers.set(name, v);
  }
}
