// The OAuth access-token table on every backend: issue and find (with the key's hash), revocation with audit rows,
// cleanup of expired tokens, and tokens going with their key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessTokens } from './access-tokens.js';
import type { Database } from './database.js';
import { hashKey } from './keys.js';
import { DATABASE_BACKENDS, type TestDatabase } from './test-databases.js';

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let tokens: AccessTokens;
    let seq = 0;

    before(async () => {
      target = await backend.create();
      db = await target.open();
      tokens = new AccessTokens(db);
    });
    after(async () => {
      await db?.close();
      await target?.dispose();
    });

    /** A fresh key (developer, app, credential); its plain consumer key and id. */
    async function key(): Promise<{ consumerKey: string; keyId: string }> {
      const n = ++seq;
      const dev = await db.developers.create({ email: `dev-${n}-${Date.now()}@example.com` });
      const app = await db.apps.create(dev.id, { name: `app-${n}` });
      const issued = await db.credentials.issue({ appId: app.id });
      return { consumerKey: issued.consumerKey, keyId: issued.credential.keyId };
    }

    const token = (keyId: string, n: string, expiresAt = Date.now() + 3600_000) => ({
      tokenHash: hashKey(`tgat_${n}`),
      keyId,
      scopes: ['chat'],
      issuedAt: Date.now(),
      expiresAt,
    });

    test('a token is found by its hash, with its key\'s hash, scopes and expiry as numbers', async () => {
      const k = await key();
      const t = token(k.keyId, 'found');
      await tokens.insert(t);
      const found = await tokens.find(t.tokenHash);
      assert.deepEqual(found, { keyId: k.keyId, keyHash: hashKey(k.consumerKey), scopes: ['chat'], issuedAt: t.issuedAt, expiresAt: t.expiresAt });
      assert.equal(await tokens.find(hashKey('tgat_unknown')), undefined);
    });

    test('revoking one token or all of a key\'s tokens writes an audit row naming the key, never the token', async () => {
      const k = await key();
      for (const n of ['r1', 'r2', 'r3']) await tokens.insert(token(k.keyId, n));
      assert.equal(await tokens.revoke(hashKey('tgat_r1'), 'admin'), true);
      assert.equal(await tokens.revoke(hashKey('tgat_r1'), 'admin'), false);
      assert.equal(await tokens.revokeForKey(k.keyId, 'admin:alice'), 2);
      assert.equal(await tokens.find(hashKey('tgat_r2')), undefined);
      const audit = await db.audit.list({ resourceType: 'accesstoken', resourceName: k.keyId });
      assert.deepEqual(audit.items.map((e) => [e.actor, e.detail.tokens]), [['admin:alice', 2], ['admin', 1]]);
      assert.ok(!JSON.stringify(audit).includes(hashKey('tgat_r1')));
    });

    test('expired tokens are cleaned up; deleting the key deletes its tokens', async () => {
      const k = await key();
      await tokens.insert(token(k.keyId, 'old', 1000));
      await tokens.insert(token(k.keyId, 'live'));
      assert.ok((await tokens.deleteExpired(Date.now())) >= 1);
      assert.equal(await tokens.find(hashKey('tgat_old')), undefined);
      await db.credentials.delete(k.keyId);
      assert.equal(await tokens.find(hashKey('tgat_live')), undefined);
    });
  });
}
