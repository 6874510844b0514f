// /v1/developers/{email}/apps/{app}/keys: an app's keys — listed without secrets, issued or imported (also at Apigee
// Edge's …/keys/create), approved, revoked, deleted, and approved or revoked per API product.
import { isDeepStrictEqual } from 'node:util';
import { AdminError, type AdminRequest, type AdminResponse } from '../gateway/admin-router.js';
import { AccessTokens, hashKey, type ApiProductGrant, type Credential, type CredentialStatus, type IssueCredentialInput } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { actionQuery, invalid, PAGE_QUERY, readBody } from './admin-input.js';
import { keyBody, type KeyBody } from './admin-schemas.js';
import { findApp, findKey, lockApp } from './developer-app.js';
import { expiresAfter, grantsFor } from './new-key.js';
import { credentialResource, issuedCredentialResource, pageBody } from './resource-shapes.js';

const KEY_ACTIONS: Record<string, CredentialStatus> = { approve: 'approved', revoke: 'revoked' };

const KEYS = '/v1/developers/{email}/apps/{app}/keys';

export function registerKeyRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const { db } = deps;
  const tokens = new AccessTokens(db);

  add('GET', KEYS, async (req, page) => {
    const app = await findApp(db, req.params);
    return { body: pageBody(await db.credentials.listForApp(app.id, page), credentialResource) };
  }, { query: PAGE_QUERY });

  async function issueKey(req: AdminRequest, body: KeyBody): Promise<AdminResponse> {
    const { issued, created } = await storeFor(deps, req).transaction(async (tx) => {
      const app = await lockApp(tx, req.params);
      // Without a list, the new key gets the products the app's keys hold (approvals are per key, so they start over).
      const products = body.apiProducts?.map((p) => (typeof p === 'string' ? p : p.apiproduct)) ?? (await tx.credentials.productsOfApp(app.id));
      const input = {
        appId: app.id,
        apiProducts: withImportedStatus(await grantsFor(tx, products, 'apiProducts'), body.apiProducts),
        // Set in the insert itself: a key revoked at its source is never live here, not even for a moment.
        status: body.status ?? 'approved',
        expiresAt: body.expiresAt === undefined ? expiresAfter(body.expiresInSeconds === undefined ? undefined : body.expiresInSeconds * 1000) : isoDate(body.expiresAt),
        issuedAt: body.issuedAt === undefined ? undefined : new Date(body.issuedAt).toISOString(),
        consumerKey: body.consumerKey,
        // An imported key without a secret stays without one, rather than getting a secret nobody asked for.
        consumerSecret: body.consumerKey === undefined ? undefined : (body.consumerSecret ?? null),
      } satisfies IssueCredentialInput;
      if (input.consumerKey !== undefined) {
        const held = await tx.credentials.findByKey(input.consumerKey);
        const credential = held?.appId === app.id ? retried(held, input, { relativeExpiry: body.expiresInSeconds !== undefined, productsGiven: body.apiProducts !== undefined }) : undefined;
        if (credential) return { issued: { credential, consumerKey: input.consumerKey, consumerSecret: input.consumerSecret ?? null }, created: false };
      }
      // Another app's key: the unique constraint refuses it, with a 409 that names neither that app nor its developer.
      return { issued: await tx.credentials.issue(input), created: true };
    });
    return { status: created ? 201 : 200, body: issuedCredentialResource(issued) };
  }

  add('POST', KEYS, async (req) => issueKey(req, await readBody(req, keyBody)));

  // Apigee Edge imports a key here; registered before `${KEYS}/{keyId}`, which it would match (key ids start key_).
  add('POST', `${KEYS}/create`, async (req) => {
    const body = await readBody(req, keyBody);
    if (body.consumerKey === undefined) throw invalid('The request body is invalid', [{ path: 'consumerKey', message: `is required: ${KEYS}/create imports an existing key, POST ${KEYS} issues a new one` }]);
    return issueKey(req, body);
  });

  add('GET', `${KEYS}/{keyId}`, async (req) => {
    const app = await findApp(db, req.params);
    return { body: credentialResource(await findKey(db, app, req.params.keyId)) };
  });

  add('POST', `${KEYS}/{keyId}`, async (req, { action }) => {
    const key = await storeFor(deps, req).transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.setStatus(req.params.keyId, action);
    });
    return { body: credentialResource(key) };
  }, { query: actionQuery(KEY_ACTIONS) });

  add('DELETE', `${KEYS}/{keyId}`, async (req) => {
    const store = storeFor(deps, req);
    // Its OAuth tokens first, in chunks outside the key's transaction (see deleteOwnedBy); only once the path names it.
    await findKey(store, await findApp(store, req.params), req.params.keyId);
    await tokens.deleteOwnedBy({ keyId: req.params.keyId });
    const key = await store.transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.delete(req.params.keyId);
    });
    return { body: credentialResource(key) };
  });

  add('POST', `${KEYS}/{keyId}/apiproducts/{product}`, async (req, { action }) => {
    const key = await storeFor(deps, req).transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.setProductStatus(req.params.keyId, req.params.product, action);
    });
    return { body: credentialResource(key) };
  }, { query: actionQuery(KEY_ACTIONS) });
}

/** On import, a product given as `{apiproduct, status}` keeps that status instead of its approvalType's. */
function withImportedStatus(grants: ApiProductGrant[], given: KeyBody['apiProducts']): ApiProductGrant[] {
  const status = new Map(given?.flatMap((p) => (typeof p === 'string' ? [] : [[p.apiproduct, p.status] as const])));
  return grants.map((g) => ({ apiproduct: g.apiproduct, status: status.get(g.apiproduct) ?? g.status }));
}

/** null: never expires. */
function isoDate(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

const sameTime = (a: string | null, b: string | null) => (a === null || b === null ? a === b : Date.parse(a) === Date.parse(b));

/**
 * `held`, this app's key with the imported consumerKey, when it is what `input` would have made: a retry whose first
 * answer was lost. Otherwise a 409 naming it (the app's own key, nothing the caller could not list). A relative expiry
 * and a left-out issuedAt read the clock, and left-out products the app's keys (which may have changed since the first
 * try), so only what was given must match.
 */
function retried(held: Credential, input: IssueCredentialInput, given: { relativeExpiry: boolean; productsGiven: boolean }): Credential {
  const { relativeExpiry, productsGiven } = given;
  const same =
    held.status === input.status &&
    (!productsGiven || isDeepStrictEqual(held.apiProducts, input.apiProducts)) &&
    held.secretHash === (input.consumerSecret == null ? null : hashKey(input.consumerSecret)) &&
    (relativeExpiry || sameTime(held.expiresAt, input.expiresAt ?? null)) &&
    (input.issuedAt === undefined || sameTime(held.issuedAt, input.issuedAt));
  if (same) return held;
  throw new AdminError(409, 'already_exists', `This app already holds this consumerKey, as ${held.keyId}, with another secret, status, products or dates`, [
    { path: 'consumerKey', message: 'already exists' },
  ]);
}
