// ServiceCallout: an HTTP call to another service in the middle of the request flow (admit), built from variables;
// the answer (status, text, JSON fields) becomes flow variables for the policies after it. Destinations are guarded
// against SSRF: loopback, link-local, metadata and (unless allowed) private addresses are refused.
import { request, type Dispatcher } from 'undici';
import { serviceCalloutSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { GatewayError, policyFault } from '../../../gateway/errors.js';
import { parseDuration } from '../../../lib/duration.js';
import { silentLogger } from '../../../lib/logger.js';
import { readCapped } from '../../../lib/read-capped.js';
import { sharedResource } from '../../shared-resources.js';
import { isTemplate } from '../../template.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { isFlowVariableName, setVariable } from '../../variables.js';
import { compileCalloutRequest } from './callout-request.js';
import { DestinationGuard } from './destination-guard.js';
import { flattenJson } from './json-variables.js';
import { isSuccess } from '../../../gateway/http-status.js';

export const SERVICE_CALLOUT = 'service-callout';

export const SERVICE_CALLOUT_FAULTS = {
  executionFailed: 'steps.servicecallout.ExecutionFailed',
} as const;

const failed = (message: string) => policyFault(500, SERVICE_CALLOUT_FAULTS.executionFailed, `ServiceCallout failed: ${message}`);

/** A "." or ".." path segment, in any spelling the URL parser resolves (`%2e`, `.%2E`, ...). */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

function parseTarget(text: string): URL {
  const url = new URL(text);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} URLs are not allowed`);
  // encodeURIComponent leaves dots alone: a variable whose value is `..` would climb out of the path the template set.
  const path = text.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0];
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment))) throw new Error('a "." or ".." path segment');
  return url;
}

/**
 * @example serviceCallout('tier', { request: { url: 'https://users.example.com/tiers/{client_id}' },
 *   response: 'tier' }, deps) — then `{ref: tier.body.level}` in a later policy.
 */
export const serviceCallout: PolicyFactory = (name, spec, deps) => {
  const s = serviceCalloutSpec.parse(spec);
  // One connection pool per set of destination rules, kept across engine rebuilds.
  const rules = { allowPrivateNetworks: s.allowPrivateNetworks, allowedHosts: s.allowedHosts };
  const guard = sharedResource(deps.now, 'callout-guard', rules, () => new DestinationGuard(rules));
  if (!isTemplate(s.request.url)) {
    const literal = parseTarget(s.request.url);
    const refusal = guard.checkAddressHost(literal);
    if (refusal) throw new Error(`request.url: ${refusal}`);
  }
  const build = compileCalloutRequest(s.request);
  const prefix = s.response ?? `servicecallout.${name}.response`;
  if (!isFlowVariableName(`${prefix}.status`)) throw new Error(`response: "${prefix}" is not a flow variable name (dotted, outside request., client., app. ...)`);
  const timeoutMs = parseDuration(s.timeout);
  const logger = deps.logger ?? silentLogger;
  // With a templated host, names, the addresses they resolve to and resolver or socket errors in the fault would let
  // any client map the gateway's internal network through the guard: the client gets the kind of failure, the log
  // the detail.
  const withheld = (ctx: RequestContext, url: URL, message: string, detail?: string) => {
    logger.warn({ requestId: ctx.id, policy: name, host: url.host, detail }, 'ServiceCallout failed: %s', message);
    return failed(message);
  };

  return {
    type: SERVICE_CALLOUT,
    name,
    async admit(ctx: RequestContext, state: ApimState) {
      const r = build(ctx, state);
      if (r.url === undefined) throw failed('a variable of request.url is not set');
      let url: URL;
      try {
        url = parseTarget(r.url);
      } catch (err) {
        throw failed(`invalid URL (${(err as Error).message})`);
      }
      const refusal = guard.checkAddressHost(url);
      if (refusal) throw withheld(ctx, url, 'destination refused', refusal);
      let status: number;
      let content: Buffer;
      try {
        const res = await request(url, {
          method: r.method as Dispatcher.HttpMethod,
          headers: r.headers,
          body: r.body,
          dispatcher: guard.dispatcher,
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.statusCode;
        content = await readCapped(res.body, s.maxResponseBytes, () => failed(`the answer is larger than ${s.maxResponseBytes} bytes`));
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') throw failed(`no answer within ${s.timeout}`);
        if (err instanceof GatewayError) throw err;
        // A name refused after DNS resolution fails like one that does not resolve: telling them apart would say
        // which names exist inside the network.
        throw withheld(ctx, url, 'the service could not be reached', (err as Error).message);
      }
      const text = content.toString('utf8');
      setVariable(state, `${prefix}.status`, String(status));
      setVariable(state, `${prefix}.content`, text);
      try {
        flattenJson(JSON.parse(text), `${prefix}.body`, (n, v) => setVariable(state, n, v));
      } catch {
        // Not JSON: the text stays available as `.content`.
      }
      if (!isSuccess(status)) throw withheld(ctx, url, `the service answered ${status}`);
    },
  } satisfies Policy;
};
