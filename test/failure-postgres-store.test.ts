// The PostgreSQL store when the network misbehaves, through a TCP proxy in front of the shared server (never stopped
// here): a LISTEN connection dropped without a reset (a NAT or load balancer forgetting an idle flow), a cut during
// admin writes. Other replicas must not keep serving a stale snapshot, and the data plane keeps serving meanwhile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { ChangeEvent } from '../src/store/change-feed.js';
import { openDatabase, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { appPath, call, codeOf, createApp, until, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('PostgreSQL LISTEN connection silently dropped', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let writer: Database;
  let proxy: TcpProxy;
  let replica: Database;

  before(async () => {
    target = await postgres.create();
    writer = await target.open({ listen: false });
    proxy = await TcpProxy.for(target.url, 5432);
    replica = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listenHeartbeatMs: 500 });
  });
  after(async () => {
    await replica?.close();
    await proxy?.close();
    await writer?.close();
    await target?.dispose();
  });

  test('the replica notices within its heartbeat, reconnects and is told to reload everything', async () => {
    const events: ChangeEvent[] = [];
    const unsubscribe = replica.onChange((e) => events.push(e));
    try {
      await writer.developers.create({ email: 'before@example.com', firstName: 'a', lastName: 'b', userName: 'before' });
      await until(async () => events.length, (n) => n > 0, 5000, 'the notification of a change');
      proxy.freezeOpen();
      events.length = 0;
      await writer.developers.create({ email: 'during@example.com', firstName: 'a', lastName: 'b', userName: 'during' });
      // Before the fix nothing ever arrived: the listener never sends, so it never learns its connection is gone.
      const e = await until(async () => events.find((x) => x.resourceTypes.includes('developer')), (x) => x !== undefined, 5000, 'a reload after the silent drop');
      assert.equal(e!.origin, 'remote');
      // And it listens again: a later change arrives as a notification of its own.
      events.length = 0;
      await writer.developers.create({ email: 'after@example.com', firstName: 'a', lastName: 'b', userName: 'after' });
      await until(async () => events.length, (n) => n > 0, 5000, 'a notification after the reconnect');
    } finally {
      unsubscribe();
    }
  });
});

/** Gateway replicas of one database (each reaching it directly or through a proxy), serving product gold behind a key. */
class Replicas {
  readonly #target: TestDatabase;
  readonly #stub: Stub;
  readonly #gateways: Gateway[] = [];
  readonly #dirs: string[] = [];

  constructor(target: TestDatabase, stub: Stub) {
    this.#target = target;
    this.#stub = stub;
  }

  async start(db: string): Promise<Gateway> {
    const analyticsDir = mkdtempSync(join(tmpdir(), 'tollgate-failure-pg-'));
    this.#dirs.push(analyticsDir);
    const gw = await startGateway({
      configPaths: [],
      ...LOOPBACK,
      db,
      dbSchema: this.#target.schema,
      analyticsDir,
      manifests: [
        manifest('InferencePool', 'pool', { endpoints: [this.#stub.url] }),
        manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
        manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'gw' } }),
        manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs: [{ name: 'ext' }] }),
        manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], restOperations: [{ name: 'o', path: '/v1/**', methods: ['POST', 'GET'] }] }),
      ],
    });
    this.#gateways.push(gw);
    return gw;
  }

  async close(): Promise<void> {
    for (const gw of this.#gateways) await gw.close();
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
  }
}

const chat = (gw: Gateway, key: string): Promise<Answer> =>
  call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': key });

interface ProxiedReplicas {
  target: TestDatabase;
  stub: Stub;
  /** In front of the database, for the replica under test. */
  proxy: TcpProxy;
  replicas: Replicas;
}

/** A database, a stub, a TCP proxy and the replicas of the calling describe, made before its tests and ended after. */
function proxiedReplicas(): ProxiedReplicas {
  const f = {} as ProxiedReplicas;
  before(async () => {
    f.target = await postgres.create();
    f.stub = await startStub();
    f.proxy = await TcpProxy.for(f.target.url, 5432);
    f.replicas = new Replicas(f.target, f.stub);
  });
  after(async () => {
    // The proxy first: it resets the connections it froze, so queries still waiting on them fail and pools can end.
    await f.proxy?.close();
    await f.replicas?.close();
    await f.stub?.close();
    await f.target?.dispose();
  });
  return f;
}

describe('a gateway replica behind a silently dropped LISTEN connection', { skip: postgres.skip }, () => {
  const f = proxiedReplicas();

  test('a key revoked on another replica stops working here within seconds; the data plane serves throughout', { timeout: 60_000 }, async () => {
    const a = await f.replicas.start(f.target.url);
    const b = await f.replicas.start(f.proxy.proxied(f.target.url));
    const app = await createApp(a.adminUrl, ['gold']);
    await untilKeyKnown(b.url, app.key);
    assert.equal((await chat(b, app.key)).status, 200);

    f.proxy.freezeOpen();
    // Replica b's database connections are gone without a word; the data plane answers from its snapshot.
    assert.equal((await chat(b, app.key)).status, 200);
    const revoked = await call(a.adminUrl, 'POST', appPath(app, `/keys/${app.keyId}?action=revoke`));
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await until(() => chat(a, app.key), (x) => x.status === 401, 5000, 'the revocation on replica a');
    // Within the default heartbeat (5 s) and a reconnect; before the fix b honoured the revoked key indefinitely.
    const answer = await until(() => chat(b, app.key), (x) => x.status === 401, 40_000, 'the revocation reaching replica b');
    assert.equal(codeOf(answer), 'oauth.v2.ApiKeyNotApproved');
  });
});

describe('a gateway replica whose COMMIT reaches PostgreSQL but whose answer is lost', { skip: postgres.skip }, () => {
  const f = proxiedReplicas();

  test('stops serving the key it deleted: its own change, announced to every other replica, is read again', { timeout: 60_000 }, async () => {
    const a = await f.replicas.start(f.target.url);
    const b = await f.replicas.start(f.proxy.proxied(f.target.url));
    const app = await createApp(a.adminUrl, ['gold']);
    await untilKeyKnown(b.url, app.key);

    // A failover or network blip right after b's COMMIT reached the server: the delete is committed, b is not told.
    // The key's own transaction: replica b's usage records are written in transactions of their own.
    const lost = f.proxy.loseAnswerTo('delete from "credentials"', 'commit\0');
    const deleted = await call(b.adminUrl, 'DELETE', appPath(app, `/keys/${app.keyId}`));
    await lost;
    assert.equal(deleted.status, 503, JSON.stringify(deleted.body));
    await until(() => chat(a, app.key), (x) => x.status === 401, 5000, 'the deletion on replica a');
    // Before the fix b skipped its own notification and never published the change: it served the key indefinitely.
    await until(() => chat(b, app.key), (x) => x.status === 401, 5000, 'the deletion on replica b');
  });
});

describe('a gateway replica whose database becomes unreachable right after its COMMIT is answered', { skip: postgres.skip }, () => {
  const f = proxiedReplicas();

  test('refuses the key it revoked as soon as it answers, and still once the database is back', { timeout: 60_000 }, async () => {
    const b = await f.replicas.start(f.proxy.proxied(f.target.url));
    const app = await createApp(b.adminUrl, ['gold']);
    await untilKeyKnown(b.url, app.key);
    await b.apim.settled();

    try {
      const revoked = await call(b.adminUrl, 'POST', appPath(app, `/keys/${app.keyId}?action=revoke`));
      // Nothing is read after the COMMIT: the outage begins before this replica could read the key again.
      await f.proxy.cut();
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      assert.equal(revoked.body.status, 'revoked');
      // Before the fix b answered 200 and kept accepting the key until the database was back.
      const right = await chat(b, app.key);
      assert.equal(right.status, 401, JSON.stringify(right.body));
      assert.equal(codeOf(right), 'oauth.v2.ApiKeyNotApproved');
    } finally {
      await f.proxy.restore();
    }
    // And once it is back, nothing puts the key back either.
    await b.apim.settled();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await chat(b, app.key)).status, 401);
  });
});
