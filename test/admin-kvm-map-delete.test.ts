// An entry written through the admin API while its key-value map is deleted: the delete takes it along, or the write
// finds no map (404); never an entry that outlives its map (which the admin API could neither see nor remove, the data
// plane kept serving, and a new map of that name started out holding).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { registerApimAdminRoutes } from '../src/apim/admin-routes.js';
import { deleteDocument } from '../src/apim/manifest-tables.js';
import { AdminRouter } from '../src/gateway/admin-router.js';
import type { Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, until } from './helpers/apim-admin.js';

/** Both ways an entry is written: POST (create) and PUT (create or replace). */
const WRITES = [
  { method: 'POST', path: (map: string) => `/v1/keyvaluemaps/${map}/entries`, body: { name: 'k', value: 'written-while-deleted' } },
  { method: 'PUT', path: (map: string) => `/v1/keyvaluemaps/${map}/entries/k`, body: { value: 'written-while-deleted' } },
] as const;

for (const backend of DATABASE_BACKENDS) {
  describe(`a key-value map deleted while an entry is written (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let server: Server;
    let base: string;
    /** The requests the server has been sent, as it holds them (to see when it reads a body). */
    const arrived: IncomingMessage[] = [];
    let seq = 0;

    before(async () => {
      target = await backend.create();
      db = await target.open();
      const router = new AdminRouter(undefined);
      registerApimAdminRoutes(router, { db, fileOwned: () => false });
      server = createServer((req, res) => {
        arrived.push(req);
        router.handle(req, res);
      }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server?.closeAllConnections();
      server?.close();
      await db?.close();
      await target?.dispose();
    });

    const newMap = async () => {
      const map = `race-${backend.name}-${++seq}`;
      assert.equal((await call(base, 'POST', '/v1/keyvaluemaps', { name: map })).status, 201);
      return map;
    };

    /** That nothing of `map` is left: no stored entry, and a map made again under its name starts out empty. */
    const assertGone = async (map: string) => {
      assert.deepEqual((await db.kvm.listAll()).filter((e) => e.mapName === map), [], 'no entry outlives its map');
      assert.equal((await call(base, 'POST', '/v1/keyvaluemaps', { name: map })).status, 201);
      assert.deepEqual((await call(base, 'GET', `/v1/keyvaluemaps/${map}/entries`)).body.items, []);
    };

    for (const write of WRITES) {
      test(`${write.method}: a map deleted before the entry's body has arrived is a 404, and the entry is not stored`, async () => {
        const map = await newMap();
        const body = JSON.stringify(write.body);
        const half = Math.floor(body.length / 2);
        let mapDeleted!: () => void;
        const deleted = new Promise<void>((r) => (mapDeleted = r));
        const answer = new Promise<number>((resolve, reject) => {
          const req = request(`${base}${write.path(map)}`, { method: write.method, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.write(body.slice(0, half));
          // The rest once the map is gone.
          void deleted.then(() => req.end(body.slice(half)));
        });
        // Once the server reads the body, whatever the route does before that is done. Before: it had read the map
        // there, and wrote the entry after the delete, into no map (201).
        await until(async () => arrived.find((r) => r.url === write.path(map))?.readableFlowing === true, Boolean, 5000, 'the body being read');
        assert.equal((await call(base, 'DELETE', `/v1/keyvaluemaps/${map}`)).status, 200);
        mapDeleted();
        assert.equal(await answer, 404);
        await assertGone(map);
      });
    }

    // PostgreSQL only: SQLite serialises writers (its one connection runs one transaction at a time), so there a write
    // cannot overlap a delete and the case does not arise.
    if (backend.name !== 'sqlite') {
      test('a write waits for an uncommitted delete of its map, then finds no map (404)', async () => {
        const map = await newMap();
        let commit!: () => void;
        const held = new Promise<void>((r) => (commit = r));
        let deleted!: () => void;
        const deleting = new Promise<void>((r) => (deleted = r));
        const deletion = db.transaction(async (tx) => {
          await deleteDocument(tx, 'KeyValueMap', map);
          deleted();
          await held;
        });
        await deleting;
        const settled = call(base, 'POST', `/v1/keyvaluemaps/${map}/entries`, WRITES[0].body).then((a) => a.status);
        // Before: the write read the map as committed before the delete, and stored its entry without waiting (201).
        const blocked = async () => {
          // Waiting on a transaction that holds this schema's manifests (the delete): not on another test's.
          const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity a where exists (
            select 1 from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace s on s.oid = c.relnamespace
            where l.pid = any(pg_blocking_pids(a.pid)) and s.nspname = ${target.schema} and c.relname = 'manifests')`.execute(db.kysely);
          return r.rows[0].n > 0;
        };
        const first = await Promise.race([settled.then((status) => ({ status })), until(blocked, Boolean, 5000, 'the write waiting on the delete').then(() => 'waiting' as const)]);
        commit();
        await deletion;
        assert.equal(first, 'waiting', `the write did not wait for the delete: ${JSON.stringify(first)}`);
        assert.equal(await settled, 404);
        await assertGone(map);
      });
    }
  });
}
