// Change events: local delivery after commit on every backend; across instances through LISTEN/NOTIFY on PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { RESOURCE_TYPES, type ChangeEvent } from './change-feed.js';
import type { Database } from './database.js';
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
      await a.developers.create({ email: 'local@example.com' });
      stop();
      stopThrowing();
      await a.developers.create({ email: 'unheard@example.com' });
      // A NOTIFY echo of our own write would arrive asynchronously; give it the chance to (wrongly) show up.
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(events, [{ resourceTypes: ['developer'], origin: 'local' }]);
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

    // Between instances, changes travel by PostgreSQL LISTEN/NOTIFY; SQLite is one process's database.
    if (backend.name === 'postgres') {

    test('another instance learns of changes through LISTEN/NOTIFY', async () => {
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
