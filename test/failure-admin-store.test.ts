// The admin API while its PostgreSQL cannot be reached (a TCP proxy in front of the shared server is cut): a 503
// store_unavailable with retry-after, which clients may retry, instead of a 500 that reads like a bug; and it serves
// again once the database is back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { call, type ServedAdmin, serveApimAdmin } from './helpers/apim-admin.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('the admin API while PostgreSQL is unreachable', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let served: ServedAdmin;

  before(async () => {
    target = await postgres.create();
    proxy = await TcpProxy.for(target.url, 5432);
    db = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listen: false });
    served = await serveApimAdmin(db);
  });
  after(async () => {
    await served?.close();
    await proxy?.restore().catch(() => {});
    await db?.close();
    await proxy?.close();
    await target?.dispose();
  });

  test('reads and writes answer 503 store_unavailable with retry-after, then work again', { timeout: 60_000 }, async () => {
    assert.equal((await call(served.url, 'POST', '/v1/developers', { email: 'before@example.com' })).status, 201);
    await proxy.cut();
    for (const [method, path, body] of [
      ['POST', '/v1/developers', { email: 'during@example.com' }],
      ['GET', '/v1/developers', undefined],
    ] as const) {
      const r = await call(served.url, method, path, body);
      assert.equal(r.status, 503, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'store_unavailable');
      assert.equal(r.headers['retry-after'], '1');
    }
    await proxy.restore();
    assert.equal((await call(served.url, 'POST', '/v1/developers', { email: 'after@example.com' })).status, 201);
    assert.equal((await call(served.url, 'GET', '/v1/developers/after@example.com')).status, 200);
  });
});
