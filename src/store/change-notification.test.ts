// Change events: local delivery after commit on every backend; across instances through LISTEN/NOTIFY on PostgreSQL
// and the change log on a SQLite file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { RESOURCE_TYPES, type ChangeEvent } from './change-feed.js';
import type { Database } from './database.js';
import { CHANGE_CHANNEL } from './pg-change-listener.js';
import { loadPg } from './postgres-connection.js';
import { DATABASE_BACKENDS, type TestDatabase } from './test-databases.js';

/** Resolves with the first event matching `match`, or rejects after `timeoutMs`. */
function nextEvent(db: Database, match: (e: ChangeEvent) => boolean, timeoutMs = 5000): Promise<ChangeEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error('no matching change event'));
    }, timeoutMs);
    const unsubscribe = db.onChange((e) => {
      if (!match(e)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(e);
    });
  });
}

const remoteOnly = (type: string) => (e: ChangeEvent) => e.origin === 'remote' && e.resourceTypes.length === 1 && e.resourceTypes[0] === type;

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let a: Database;

    before(async () => {
      target = await backend.create();
      a = await target.open();
    });
    after(async () => {
      await a?.close();
      await target?.dispose();
    });

    test('listeners hear of committed changes once, locally, and a throwing listener does not fail the write', async () => {
      const events: ChangeEvent[] = [];
      const stop = a.onChange((e) => events.push(e));
      const stopThrowing = a.onChange(() => {
        throw new Error('listener bug');
      });
      const dev = await a.developers.create({ email: 'local@example.com' });
      stop();
      stopThrowing();
      await a.developers.create({ email: 'unheard@example.com' });
      // A NOTIFY echo of our own write would arrive asynchronously; give it the chance to (wrongly) show up.
      await new Promise((r) => setTimeout(r, 100));
      // With the rows the change left, read before its COMMIT: the listener can serve it without reading again.
      const readStartedAt = events[0]?.identityRows?.readStartedAt;
      assert.ok(typeof readStartedAt === 'number' && readStartedAt <= performance.now());
      assert.deepEqual(events, [{ resourceTypes: ['developer'], identity: { appIds: [], developerIds: [dev.id] }, identityRows: { readStartedAt, apps: [], developers: [dev], credentials: [] }, origin: 'local' }]);
    });

    test('a change of keys, apps and developers alone names whose keys it touched; any other change, or too many owners, names none', async () => {
      const events: ChangeEvent[] = [];
      const stop = a.onChange((e) => events.push(e));
      const dev = await a.developers.create({ email: 'owners@example.com' });
      const app = await a.apps.create(dev.id, { name: 'owned' });
      const { credential } = await a.credentials.issue({ appId: app.id });
      await a.credentials.setStatus(credential.keyId, 'revoked');
      await a.credentials.regrantApp(app.id, [{ apiproduct: 'gold', status: 'approved' }]);
      await a.credentials.setProductStatus(credential.keyId, 'gold', 'revoked');
      await a.apps.setStatus(app.id, 'revoked');
      await a.developers.setStatus(dev.id, 'inactive');
      await a.credentials.delete(credential.keyId);
      const other = await a.apps.create(dev.id, { name: 'other' });
      const otherKey = await a.credentials.issue({ appId: other.id });
      await a.apps.delete(other.id);
      const byApp = { appIds: [app.id], developerIds: [] };
      const byKey = { appIds: [], developerIds: [], keyIds: [credential.keyId] };
      const byDeveloper = { appIds: [], developerIds: [dev.id] };
      const otherApp = { appIds: [other.id], developerIds: [] };
      const byOtherKey = { appIds: [], developerIds: [], keyIds: [otherKey.credential.keyId] };
      assert.deepEqual(
        events.map((e) => e.identity),
        [byDeveloper, byApp, byKey, byKey, byKey, byKey, byApp, byDeveloper, byKey, otherApp, byOtherKey, otherApp],
      );
      // A key changed with its app (issued with it) is read with the app; past 64 keys, their apps are named instead.
      const keyDev = await a.developers.create({ email: 'keys@example.com' });
      const whole = await a.apps.create(keyDev.id, { name: 'whole' });
      events.length = 0;
      const crowded = await a.apps.create(keyDev.id, { name: 'crowded' });
      await a.transaction(async (tx) => {
        await tx.apps.setStatus(whole.id, 'revoked');
        await tx.credentials.issue({ appId: whole.id });
        await tx.credentials.issue({ appId: crowded.id });
      });
      await a.transaction(async (tx) => {
        for (let i = 0; i < 65; i++) await tx.credentials.issue({ appId: crowded.id });
      });
      assert.deepEqual(
        events.map((e) => [e.identity?.appIds, e.identity?.keyIds?.length]),
        [
          [[crowded.id], undefined],
          [[whole.id], 1],
          [[crowded.id], undefined],
        ],
      );
      // The key issued into `whole` comes with the app's keys, the other alone.
      assert.deepEqual(events[1].identityRows?.credentials.map((c) => c.appId).sort(), [whole.id, crowded.id].sort());
      events.length = 0;
      await a.developers.delete(dev.id);
      assert.deepEqual(events.map((e) => [e.resourceTypes.sort(), e.identity]), [[['app', 'credential', 'developer'], byDeveloper]]);

      // Not only identity rows (a product's grants dropped from keys), or more owners than a read should name.
      events.length = 0;
      const dev2 = await a.developers.create({ email: 'many@example.com' });
      const app2 = await a.apps.create(dev2.id, { name: 'holder' });
      await a.products.create({ name: 'doomed' });
      await a.credentials.issue({ appId: app2.id, apiProducts: [{ apiproduct: 'doomed', status: 'approved' }] });
      events.length = 0;
      await a.products.delete('doomed');
      await a.transaction(async (tx) => {
        for (let i = 0; i < 257; i++) await tx.apps.create(dev2.id, { name: `bulk-${i}` });
      });
      stop();
      assert.deepEqual(events.map((e) => [e.resourceTypes.sort(), e.identity]), [[['apiproduct', 'credential'], undefined], [['app'], undefined]]);
    });

    test("a policy's put is announced as that entry alone, without an audit row", async () => {
      const events: ChangeEvent[] = [];
      const stop = a.onChange((e) => events.push(e));
      await a.kvm.putFromPolicy({ scope: 'apiproduct:gold', mapName: 'flow', key: 'k', value: 'v' });
      await a.kvm.put({ scope: 'environment', mapName: 'flow', key: 'k', value: 'v' });
      stop();
      assert.deepEqual(events, [
        { resourceTypes: ['kvm'], kvmEntries: [{ scope: 'apiproduct:gold', mapName: 'flow', key: 'k' }], origin: 'local' },
        { resourceTypes: ['kvm'], origin: 'local' },
      ]);
      assert.deepEqual((await a.audit.list({ resourceType: 'kvm', resourceName: 'apiproduct:gold/flow/k' })).items, []);
    });

    // Between instances, changes travel by PostgreSQL LISTEN/NOTIFY, and on a SQLite file by its change_log.
    test('another instance learns of changes (PostgreSQL LISTEN/NOTIFY; on a SQLite file, its change log)', async () => {
      const b = await target.open();
      try {
        const heard = nextEvent(a, remoteOnly('apiproduct'));
        await b.products.create({ name: 'from-b' });
        assert.deepEqual(await heard, { resourceTypes: ['apiproduct'], origin: 'remote' });
      } finally {
        await b.close();
      }
    });

    test("another instance learns which entries a policy's put wrote; too long to name in a notification, they go unnamed", async () => {
      const b = await target.open();
      try {
        const named = nextEvent(a, remoteOnly('kvm'));
        await b.kvm.putFromPolicy({ scope: 'environment', mapName: 'flow', key: 'short', value: 'v' });
        assert.deepEqual(await named, { resourceTypes: ['kvm'], kvmEntries: [{ scope: 'environment', mapName: 'flow', key: 'short' }], origin: 'remote' });
        const unnamed = nextEvent(a, remoteOnly('kvm'));
        await b.kvm.putFromPolicy({ scope: 'environment', mapName: 'flow', key: 'k'.repeat(8000), value: 'v' });
        assert.deepEqual(await unnamed, { resourceTypes: ['kvm'], origin: 'remote' });
      } finally {
        await b.close();
      }
    });

    test('another instance learns which keys changed one by one; one that reads no key ids reads their apps whole', async () => {
      const b = await target.open();
      try {
        const dev = await b.developers.create({ email: 'notified-keys@example.com' });
        const app = await b.apps.create(dev.id, { name: 'notified' });
        const heard = nextEvent(a, remoteOnly('credential'));
        const { credential } = await b.credentials.issue({ appId: app.id });
        assert.deepEqual(await heard, { resourceTypes: ['credential'], identity: { appIds: [], developerIds: [], keyIds: [credential.keyId] }, origin: 'remote' });
        if (backend.name !== 'postgres') return;
        const raw = new Promise<string>((resolve) => {
          const client = new (loadPg().Client)(target.url);
          client.on('notification', (msg) => {
            if (msg.payload?.includes(credential.keyId)) void client.end().then(() => resolve(msg.payload ?? ''));
          });
          void client.connect().then(() => client.query(`LISTEN ${CHANGE_CHANNEL}`)).then(() => b.credentials.setStatus(credential.keyId, 'revoked'));
        });
        // The payload names the key's app among `appIds` too, for a replica that predates key ids.
        assert.deepEqual(JSON.parse(await raw).identity, { appIds: [app.id], developerIds: [], keyIds: [credential.keyId], keyAppIds: [app.id] });
      } finally {
        await b.close();
      }
    });

    if (backend.name === 'sqlite') {
      test('a SQLite reader that missed pruned changes, or finds one it cannot read, reads everything again', async () => {
        const b = await target.open();
        // Polls once a second: the changes below and their pruning are made before its first poll.
        const slow = await target.open({ changePollMs: 1000 });
        try {
          const events: ChangeEvent[] = [];
          const stop = slow.onChange((e) => events.push(e));
          await b.products.create({ name: 'pruned-1' });
          await b.products.create({ name: 'pruned-2' });
          // What KEEP_ROWS does to a reader that has fallen that far behind.
          const { seq } = await b.kysely.selectFrom('change_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirstOrThrow();
          await b.kysely.deleteFrom('change_log').where('seq', '<', Number(seq)).execute();
          const everything = (e: ChangeEvent) => e.origin === 'remote' && e.resourceTypes.length === RESOURCE_TYPES.length;
          await nextEvent(slow, everything);
          assert.deepEqual(events.filter((e) => !everything(e)), []);
          events.length = 0;
          // A row written by a newer version this one cannot read may have changed anything.
          await b.kysely.insertInto('change_log').values({ origin: 'a-newer-process', payload: '{not json' }).execute();
          await b.products.create({ name: 'after-garbage' });
          await nextEvent(slow, remoteOnly('apiproduct'));
          stop();
          assert.ok(events.some(everything), JSON.stringify(events));
        } finally {
          await slow.close();
          await b.close();
        }
      });
    }

    if (backend.name === 'postgres') {
    test('instances on other schemas do not hear it', async () => {
      const elsewhere = await backend.create();
      const other = await elsewhere.open();
      try {
        const events: ChangeEvent[] = [];
        const stop = a.onChange((e) => events.push(e));
        const heardByOther = nextEvent(other, (e) => e.origin === 'local');
        await other.kvm.put({ scope: 'environment', mapName: 'm', key: 'k', value: 'v' });
        await heardByOther;
        await new Promise((r) => setTimeout(r, 200));
        stop();
        assert.deepEqual(events, []);
      } finally {
        await other.close();
        await elsewhere.dispose();
      }
    });

    test('the listener reconnects after its connection drops and asks for a full reload', async () => {
      const b = await target.open({ listen: false });
      try {
        const resync = nextEvent(a, (e) => e.origin === 'remote' && e.resourceTypes.length === RESOURCE_TYPES.length);
        const killed = await sql<{ pid: number }>`select pg_terminate_backend(pid) as pid from pg_stat_activity
          where application_name = ${`tollgate-listen:${target.schema}`}`.execute(b.kysely);
        assert.equal(killed.rows.length, 1);
        await resync;
        const heard = nextEvent(a, remoteOnly('operationset'));
        await b.operationSets.apply({ name: 'after-reconnect', spec: {} });
        await heard;
      } finally {
        await b.close();
      }
    });
    }
  });
}
