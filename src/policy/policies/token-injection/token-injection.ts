// TokenInjection: credentials for the model servers, added by the gateway so they can stay private — a static
// secret from the environment, or an OAuth client-credentials token kept fresh. Sets an upstream request header.
import { tokenInjectionSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { parseDuration } from '../../../lib/duration.js';
import { silentLogger } from '../../../lib/logger.js';
import { resolveHeaderSecret, resolveSecret } from '../../secret-source.js';
import { sharedResource } from '../../shared-resources.js';
import type { Policy, PolicyFactory } from '../../types.js';
import { ClientCredentialsToken, TokenFetchError } from './client-credentials-token.js';

export const TOKEN_INJECTION = 'token-injection';

export const TOKEN_INJECTION_FAULTS = {
  tokenFetchFailed: 'steps.tokeninjection.TokenFetchFailed',
} as const;

/**
 * @example tokenInjection('model-auth', { secret: { env: 'VLLM_API_KEY' } }, deps) — Authorization: Bearer $VLLM_API_KEY;
 * tokenInjection('idp', { clientCredentials: { tokenUrl, clientId: { value: 'gw' }, clientSecret: { env: 'GW_SECRET' } } }, deps)
 */
export const tokenInjection: PolicyFactory = (name, spec, deps) => {
  const s = tokenInjectionSpec.parse(spec);
  const prefix = s.prefix ?? (s.header === 'authorization' ? 'Bearer ' : '');
  const header = s.header;
  const set = (ctx: RequestContext, token: string) => {
    (ctx.upstreamHeaders ??= {})[header] = prefix + token;
  };

  if (s.secret) {
    const value = prefix + resolveHeaderSecret(s.secret, 'spec.secret');
    return {
      type: TOKEN_INJECTION,
      name,
      admit(ctx: RequestContext) {
        (ctx.upstreamHeaders ??= {})[header] = value;
      },
    } satisfies Policy;
  }

  const c = s.clientCredentials!;
  const settings = {
    tokenUrl: c.tokenUrl,
    clientId: resolveSecret(c.clientId, 'spec.clientCredentials.clientId'),
    clientSecret: resolveSecret(c.clientSecret, 'spec.clientCredentials.clientSecret'),
    scope: c.scope,
    audience: c.audience,
    authMethod: c.authMethod,
    refreshBeforeMs: parseDuration(c.refreshBefore),
    timeoutMs: parseDuration(c.timeout),
    retryAfterFailureMs: parseDuration(c.retryAfterFailure),
  };
  const source = sharedResource(deps.now, 'token-injection', settings, () => new ClientCredentialsToken({ ...settings, now: deps.now, logger: deps.logger ?? silentLogger }));
  const fault = (err: unknown) => {
    const why = err instanceof TokenFetchError ? err.message : 'unexpected error';
    return policyFault(500, TOKEN_INJECTION_FAULTS.tokenFetchFailed, `No upstream token: ${why}`);
  };
  return {
    type: TOKEN_INJECTION,
    name,
    admit(ctx: RequestContext) {
      const token = source.get();
      if (typeof token === 'string') return set(ctx, token);
      return token.then((t) => set(ctx, t), (err: unknown) => Promise.reject(fault(err)));
    },
  } satisfies Policy;
};
