// Key-value maps through /v1/apply, on every backend, held to what POST /v1/keyvaluemaps holds them to: an encrypted
// one needs TOLLGATE_KVM_KEY, and a map's encryption is set when it is made, not turned on or off over its entries;
// the admin API shows each entry as it is stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvmCipher } from '../src/apim/kvm-cipher.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const KEY_ENV = 'TOLLGATE_KVM_KEY';
const previousKey = process.env[KEY_ENV];
const map = (name: string, encrypted: boolean) => ({ apiVersion: 'apim.googleapis.com/v1', kind: 'KeyValueMap', metadata: { name }, spec: { encrypted } });

after(() => {
  if (previousKey === undefined) delete process.env[KEY_ENV];
  else process.env[KEY_ENV] = previousKey;
});

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let analyticsDir: string;
    let gw: Gateway | undefined;

    /** A gateway over this backend's database, with TOLLGATE_KVM_KEY as `key` says when it starts. */
    const start = async (key: string | undefined) => {
      await gw?.close();
      if (key === undefined) delete process.env[KEY_ENV];
      else process.env[KEY_ENV] = key;
      gw = await startGateway({ configPaths: [], manifests: [], ...LOOPBACK, logger: silentLogger, db: target.url, dbSchema: target.schema, analyticsDir });
      return gw;
    };
    const apply = (docs: unknown[]) => call(gw!.adminUrl, 'POST', '/v1/apply', docs);
    const entry = (m: string, key: string) => call(gw!.adminUrl, 'GET', `/v1/keyvaluemaps/${m}/entries/${key}`);

    before(async () => {
      target = await backend.create();
      // A database that is not in memory gets usage records, whose spool directory is one pipeline's alone.
      analyticsDir = mkdtempSync(join(tmpdir(), 'tollgate-kvm-apply-'));
    });

    after(async () => {
      await gw?.close();
      await target?.dispose();
      rmSync(analyticsDir, { recursive: true, force: true });
    });

    test(`without ${KEY_ENV}, apply refuses an encrypted map, as POST does`, async () => {
      await start(undefined);
      // Before: created (200), and every entry put into it was then a 503.
      for (const dryRun of [true, false]) {
        const r = await call(gw!.adminUrl, 'POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, [map('plain', false), map('vault', true)]);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.deepEqual(r.body.error.details, [{ path: '[1].spec.encrypted', message: `${KEY_ENV} is not set on the gateway` }]);
      }
      assert.equal((await call(gw!.adminUrl, 'GET', '/v1/keyvaluemaps/vault')).status, 404);
      assert.equal((await apply([map('plain', false)])).status, 200, 'a plain one is applied');
    });

    test("apply refuses to turn a map's encryption on or off; its entries stay as they were stored", async () => {
      await start(randomBytes(32).toString('hex'));
      assert.equal((await apply([map('plain', false), map('vault', true)])).status, 200);
      assert.equal((await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/plain/entries/db-password', { value: 'hunter2' })).status, 200);
      assert.equal((await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/vault/entries/api-token', { value: 'tok-secret' })).status, 200);
      // Before: both applied; `plain` then claimed to encrypt a password stored readable, `vault` showed ciphertext.
      const r = await apply([map('plain', true), map('vault', false)]);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.deepEqual(r.body.error.details.map((d: { path: string }) => d.path), ['[0].spec.encrypted', '[1].spec.encrypted']);
      assert.match(r.body.error.details[0].message, /the map is not encrypted, which is set when it is made: delete it \(its entries go with it\) and make it again/);
      assert.match(r.body.error.details[1].message, /the map is encrypted, which is set/);
      assert.deepEqual((await call(gw!.adminUrl, 'GET', '/v1/keyvaluemaps')).body.keyValueMaps, [
        { name: 'plain', encrypted: false },
        { name: 'vault', encrypted: true },
      ]);
      assert.deepEqual((await entry('plain', 'db-password')).body, { name: 'db-password', value: 'hunter2' });
      assert.deepEqual((await entry('vault', 'api-token')).body, { name: 'api-token', encrypted: true });
      assert.deepEqual((await apply([map('plain', false), map('vault', true)])).body.results.map((x: { outcome: string }) => x.outcome), ['unchanged', 'unchanged']);
    });

    test('restarted under another key: writes to a map of entries it cannot read are a 409, and the metric counts them', async () => {
      await start(randomBytes(32).toString('hex'));
      assert.equal((await call(gw!.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'sealed', encrypted: true })).status, 201);
      assert.equal((await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/sealed/entries/token', { value: 'first' })).status, 200);
      await start(randomBytes(32).toString('hex'));
      const refused = await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/sealed/entries/other', { value: 'second' });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'kvm_key_mismatch');
      assert.match(refused.body.error.message, /TOLLGATE_KVM_KEY is not the key/);
      const metrics = await (await fetch(`${gw!.adminUrl}/metrics`)).text();
      assert.match(metrics, /^tollgate_kvm_unreadable_entries [1-9]\d*$/m);
      // Deleting what cannot be read needs no key: the map then takes the new key's entries.
      assert.equal((await call(gw!.adminUrl, 'DELETE', '/v1/keyvaluemaps/sealed/entries/token')).status, 200);
      assert.equal((await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/sealed/entries/other', { value: 'second' })).status, 200);
    });

    test('a key change: the old key among TOLLGATE_KVM_PREVIOUS_KEYS still reads; :reencrypt writes its entries under the new one', async () => {
      const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
      await start(oldKey.toString('hex'));
      assert.equal((await call(gw!.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'rotating', encrypted: true })).status, 201);
      for (const k of ['a', 'b']) assert.equal((await call(gw!.adminUrl, 'PUT', `/v1/keyvaluemaps/rotating/entries/${k}`, { value: `value-${k}` })).status, 200);
      process.env.TOLLGATE_KVM_PREVIOUS_KEYS = oldKey.toString('base64');
      try {
        await start(newKey.toString('hex'));
        // Readable through the old key, so the map takes writes (under the new one) meanwhile.
        assert.equal((await call(gw!.adminUrl, 'PUT', '/v1/keyvaluemaps/rotating/entries/c', { value: 'value-c' })).status, 200);
        const done = await call(gw!.adminUrl, 'POST', '/v1/keyvaluemaps:reencrypt');
        assert.equal(done.status, 200);
        assert.ok(done.body.reencrypted >= 2, JSON.stringify(done.body));
        assert.equal((await call(gw!.adminUrl, 'POST', '/v1/keyvaluemaps:reencrypt')).body.reencrypted, 0, 'nothing is left under an earlier key');
        const audit = await call(gw!.adminUrl, 'GET', '/v1/audit?resourceType=kvm');
        assert.ok(audit.body.items.some((r: { action: string }) => r.action === 'reencrypt'), JSON.stringify(audit.body.items.slice(0, 3)));
      } finally {
        delete process.env.TOLLGATE_KVM_PREVIOUS_KEYS;
      }
      // The new key alone reads every entry of the map now.
      const alone = new KvmCipher(newKey);
      const stored = (await gw!.apim.db.kvm.listAll()).filter((e) => e.mapName === 'rotating');
      assert.deepEqual(stored.map((e) => [e.key, alone.decrypt(e.value)]), [['a', 'value-a'], ['b', 'value-b'], ['c', 'value-c']]);
    });

    test('an entry stored other than as its map says (a flip an earlier version allowed) is shown as it is stored', async () => {
      const db = gw!.apim.db;
      await db.kvm.put({ scope: 'environment', mapName: 'vault', key: 'legacy-plain', value: 'readable', encrypted: false });
      await db.kvm.put({ scope: 'environment', mapName: 'plain', key: 'legacy-sealed', value: 'aes256gcm:aXY=:dGFn:ZGF0YQ==', encrypted: true });
      // Before: by the map's flag, the readable one was hidden as if encrypted and the sealed one shown as its ciphertext.
      assert.deepEqual((await entry('vault', 'legacy-plain')).body, { name: 'legacy-plain', value: 'readable' });
      assert.deepEqual((await entry('plain', 'legacy-sealed')).body, { name: 'legacy-sealed', encrypted: true });
      const listed = await call(gw!.adminUrl, 'GET', '/v1/keyvaluemaps/plain/entries');
      assert.deepEqual(listed.body.items, [{ name: 'db-password', value: 'hunter2' }, { name: 'legacy-sealed', encrypted: true }]);
    });
  });
}
