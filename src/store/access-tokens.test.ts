// The OAuth access-token table on every backend: issue and find (with the key's hash), revocation with audit rows,
// cleanup of expired tokens, and tokens going with their key; at volume, each of those a chunk at a time, the event
// loop turning in between (SQLite's statements run on it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessTokens } from './access-tokens.js';
import type { Database } from './database.js';
import { hashKey } from './keys.js';
import { keepsTurning } from '../lib/test-stall.js';
import { DATABASE_BACKENDS, type TestDatabase } from './test-databases.js';
import { seedTokens, tokenCount } from './test-token-rows.js';

const DAY = 86_400_000;
/** Enough rows that one statement deleting them all held SQLite's event loop for most of a second. */
const MANY = 50_000;

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
      assert.ok((await tokens.deleteLongExpired(DAY)) >= 1);
      assert.equal(await tokens.find(hashKey('tgat_old')), undefined);
      await db.credentials.delete(k.keyId);
      assert.equal(await tokens.find(hashKey('tgat_live')), undefined);
    });

    test(`the sweep deletes ${MANY} tokens expired over a day ago in chunks, the event loop turning; newer ones stay`, async () => {
      const k = await key();
      await seedTokens(db, k.keyId, MANY, Date.now() - 2 * DAY, 'sweep-');
      await tokens.insert(token(k.keyId, 'expired-an-hour-ago', Date.now() - 3600_000));
      await tokens.insert(token(k.keyId, 'live-swept'));
      assert.ok((await keepsTurning(() => tokens.deleteLongExpired(DAY))) >= MANY);
      assert.equal(await tokenCount(db, k.keyId), 2);
    });

    test(`revoking a key's ${MANY} tokens goes in chunks, the event loop turning; the audit row counts them`, async () => {
      const k = await key();
      await seedTokens(db, k.keyId, MANY, Date.now() + 3600_000, 'revoke-');
      assert.equal(await keepsTurning(() => tokens.revokeForKey(k.keyId, 'admin')), MANY);
      assert.equal(await tokenCount(db, k.keyId), 0);
      const audit = await db.audit.list({ resourceType: 'accesstoken', resourceName: k.keyId });
      assert.deepEqual(audit.items.map((e) => e.detail.tokens), [MANY]);
      assert.equal(await tokens.revokeForKey(k.keyId, 'admin'), 0);
    });

    test('the tokens of a developer, an app or a key about to be deleted go in chunks, the event loop turning; no one else\'s', async () => {
      const n = ++seq;
      const dev = await db.developers.create({ email: `owner-${n}-${Date.now()}@example.com` });
      const apps = [await db.apps.create(dev.id, { name: `a-${n}` }), await db.apps.create(dev.id, { name: `b-${n}` })];
      const keys = [];
      for (const app of apps) keys.push((await db.credentials.issue({ appId: app.id })).credential.keyId);
      const other = await key();
      for (const [i, keyId] of keys.entries()) await seedTokens(db, keyId, MANY / 2, Date.now() + 3600_000, `dev-${n}-${i}-`);
      await seedTokens(db, other.keyId, 3, Date.now() + 3600_000, `other-${n}-`);
      assert.equal(await keepsTurning(() => tokens.deleteOwnedBy({ developerId: dev.id })), MANY);
      for (const keyId of keys) assert.equal(await tokenCount(db, keyId), 0);
      assert.equal(await tokenCount(db, other.keyId), 3);

      await seedTokens(db, keys[0], 2, Date.now() + 3600_000, `app-${n}-`);
      await seedTokens(db, keys[1], 2, Date.now() + 3600_000, `app-${n}-b-`);
      assert.equal(await tokens.deleteOwnedBy({ appId: apps[0].id }), 2);
      assert.equal(await tokenCount(db, keys[1]), 2);
      assert.equal(await tokens.deleteOwnedBy({ keyId: keys[1] }), 2);
      assert.equal(await tokenCount(db, other.keyId), 3);
      await db.developers.delete(dev.id);
    });

    // SQLite is one host: its local clock is the only one.
    if (backend.name === 'postgres') {
      test('on PostgreSQL the sweep goes by the database\'s clock: a replica whose clock is a day ahead deletes no live token', async (t) => {
        const k = await key();
        const now = Date.now();
        await tokens.insert(token(k.keyId, 'live-ahead', now + 1800_000));
        await tokens.insert(token(k.keyId, 'long-expired-ahead', now - 2 * DAY));
        t.mock.method(Date, 'now', () => now + 25 * 3600_000);
        await tokens.deleteLongExpired(DAY);
        t.mock.restoreAll();
        assert.ok(await tokens.find(hashKey('tgat_live-ahead')));
        assert.equal(await tokens.find(hashKey('tgat_long-expired-ahead')), undefined);
      });
    }
  });
}
