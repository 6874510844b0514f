// POST /v1/oauth/revoke: revokes one OAuth access token, or every token of a key. Replicas stop accepting a revoked
// token once their cached lookup is older than the token cache's TTL (one second).
import { z } from 'zod';
import { AccessTokens, hashKey } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { readBody } from './admin-input.js';
import { actorOf } from './request-actor.js';

const revokeBody = z
  .object({ token: z.string().min(1).optional(), keyId: z.string().min(1).optional() })
  .strict()
  .refine((b) => (b.token === undefined) !== (b.keyId === undefined), 'give exactly one of token and keyId');

export function registerOAuthRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const tokens = new AccessTokens(deps.db);
  add('POST', '/v1/oauth/revoke', async (req) => {
    const body = await readBody(req, revokeBody);
    const actor = actorOf(req);
    // Like RFC 7009, an unknown token is not an error: the answer says how many tokens were revoked.
    const revoked = body.token !== undefined ? Number(await tokens.revoke(hashKey(body.token), actor)) : await tokens.revokeForKey(body.keyId!, actor);
    return { body: { revoked } };
  });
}
