// The admin API while its PostgreSQL cannot be reached (a TCP proxy in front of the shared server is cut), goes silent
// (stalled, or its flows dropped without a reset), or another replica's silent session holds a lock it needs: a 503
// store_unavailable with retry-after, which clients may retry, instead of a 500 that reads like a bug or an answer that
// never comes; a write given up is not committed later; and it serves again once the database is back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Database } from '../src/store/index.js';
import { STATEMENT_DEADLINE_MS } from '../src/store/postgres-connection.js';
import { IDLE_IN_TRANSACTION_TIMEOUT_MS, LOCK_TIMEOUT_MS } from '../src/store/transaction.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { answerWithin, call, until, type Answer, type ServedAdmin, serveApimAdmin } from './helpers/apim-admin.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

/** The admin API on a store whose PostgreSQL connections go through a TCP proxy the test can cut or freeze. */
async function adminBehindProxy(): Promise<{ target: TestDatabase; proxy: TcpProxy; db: Database; served: ServedAdmin }> {
  const target = await postgres.create();
  const proxy = await TcpProxy.for(target.url, 5432);
  const db = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listen: false });
  return { target, proxy, db, served: await serveApimAdmin(db) };
}

describe('the admin API while PostgreSQL is unreachable', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let served: ServedAdmin;

  before(async () => ({ target, proxy, db, served } = await adminBehindProxy()));
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

function assertUnavailable(r: Answer | undefined, what: string): void {
  assert.ok(r, `${what}: answered`);
  assert.equal(r.status, 503, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'store_unavailable');
  assert.equal(r.headers['retry-after'], '1');
}

describe('the admin API while its PostgreSQL connections go silent', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let served: ServedAdmin;

  before(async () => ({ target, proxy, db, served } = await adminBehindProxy()));
  after(async () => {
    await served?.close();
    // The proxy first: it resets what it froze, so a query still waiting on it fails and the pool can end.
    await proxy?.close();
    await db?.close();
    await target?.dispose();
  });

  test('a write on a stalled connection answers 503 within the statement deadline, and is not committed once the stall ends', { timeout: 60_000 }, async () => {
    assert.equal((await call(served.url, 'POST', '/v1/developers', { email: 'before-stall@example.com' })).status, 201);
    proxy.stall();
    try {
      const started = Date.now();
      // Before the fix no answer came for as long as the stall lasted.
      assertUnavailable(await answerWithin(call(served.url, 'POST', '/v1/developers', { email: 'during-stall@example.com' }), 20_000), 'the write');
      assert.ok(Date.now() - started < STATEMENT_DEADLINE_MS + 3000, `answered after ${Date.now() - started} ms`);
    } finally {
      proxy.unstall();
    }
    // What the stall held reaches the server now: before the fix the write then committed, after its client gave up.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await call(served.url, 'GET', '/v1/developers/during-stall@example.com')).status, 404);
    const audit = await call(served.url, 'GET', '/v1/audit?resourceType=developer');
    assert.deepEqual(audit.body.items.filter((e: { resourceName: string }) => e.resourceName === 'during-stall@example.com'), []);
  });

  test('reads and writes on connections dropped without a reset answer 503 in time, then work on new connections', { timeout: 60_000 }, async () => {
    assert.equal((await call(served.url, 'GET', '/v1/developers')).status, 200);
    // What a NAT or load balancer does when it forgets a flow: the pool's open connections hear nothing again.
    proxy.freezeOpen();
    const started = Date.now();
    assertUnavailable(await answerWithin(call(served.url, 'POST', '/v1/developers', { email: 'during-freeze@example.com' }), 20_000), 'the write');
    assert.ok(Date.now() - started < STATEMENT_DEADLINE_MS + 3000, `answered after ${Date.now() - started} ms`);
    assert.equal((await call(served.url, 'POST', '/v1/developers', { email: 'after-freeze@example.com' })).status, 201);
    assert.equal((await call(served.url, 'GET', '/v1/developers/during-freeze@example.com')).status, 404);
  });
});

describe('the admin API while a silent session of another replica holds the lock an apply takes', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let served: ServedAdmin;
  let other: Database;

  before(async () => {
    target = await postgres.create();
    proxy = await TcpProxy.for(target.url, 5432);
    db = await target.open({ listen: false });
    served = await serveApimAdmin(db);
    // Another replica, reaching the database through the proxy.
    other = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listen: false });
  });
  after(async () => {
    await served?.close();
    await proxy?.close();
    await other?.close();
    await db?.close();
    await target?.dispose();
  });

  const apply = (name: string) => call(served.url, 'POST', '/v1/apply', [{ apiVersion: 'apim.googleapis.com/v1', kind: 'APIProduct', metadata: { name }, spec: { displayName: name } }]);

  test('an apply answers 503 while the lock is held, and goes through once PostgreSQL ends the silent session', { timeout: 60_000 }, async () => {
    assert.equal((await apply('p0')).status, 200);
    // The other replica's apply took the policies lock, then its flow went silent: PostgreSQL keeps the session open,
    // and the replica, sending nothing more, has no statement waiting on it to give up.
    let resume!: () => void;
    let locked!: () => void;
    const held = new Promise<void>((r) => (locked = r));
    const stalled = other.transaction(async (tx) => {
      await tx.serialize('policies');
      locked();
      await new Promise<void>((r) => (resume = r));
    });
    try {
      await held;
      proxy.freezeOpen();
      const started = Date.now();
      // Before the fix this waited for the lock as long as PostgreSQL kept the session: two hours by default.
      assertUnavailable(await answerWithin(apply('p1'), 20_000), 'the apply');
      assert.ok(Date.now() - started < LOCK_TIMEOUT_MS + 2000, `answered after ${Date.now() - started} ms`);
      const applied = await until(() => answerWithin(apply('p1'), 20_000), (r) => r?.status === 200, IDLE_IN_TRANSACTION_TIMEOUT_MS + 5000, 'the apply once the session is ended', 200);
      assert.deepEqual(applied?.body.results, [{ kind: 'APIProduct', name: 'p1', outcome: 'created' }]);
    } finally {
      resume?.();
      // Its COMMIT goes to a connection the server has ended.
      await assert.rejects(stalled);
    }
  });
});
