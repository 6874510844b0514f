// Whole gateways on the Redis deployments platform teams run besides a single server: a Redis Cluster (two gateways
// sharing one quota and one answer cache, whose keys spread over three primaries) and a primary that Sentinel watches
// (counting goes on, on the new primary, after a failover), each this file's own, started from test-redis-servers.ts;
// and deployments kept apart on the shared server by `?keyPrefix=`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { randomBase62 } from '../src/store/keys.js';
import { certificates } from './helpers/certificates.js';
import { startGatewayChild, stopGatewayChild, type GatewayChild } from './helpers/gateway-child.js';
import { REDIS_DEPLOYMENTS_SKIP, startRedisCluster, startRedisSentinel, type RedisClusterDeployment, type RedisDeployment, type RedisSentinelDeployment } from '../src/store/test-redis-servers.js';
import { awayFromWindowEdge, call, codeOf, createApp, quotaReport, until, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import type { GatewayProcessArgs } from './helpers/gateway-process.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** A quota product `q` (limit per window) and a product `c` whose template caches answers in Redis, as [kind, name, spec]. */
function documents(upstream: string, quota: { limit: number; timeUnit: 'minute' | 'hour' }): GatewayProcessArgs['manifests'] {
  return [
    ['APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }],
    ['InferencePool', 'pool', { endpoints: [upstream] }],
    ['InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }],
    ['APIProduct', 'q', { displayName: 'q' }],
    ['APIOperationSet', 'q-ops', { apiProductRefs: [{ name: 'q' }], quota: { limit: quota.limit, interval: 1, timeUnit: quota.timeUnit } }],
    ['APIProduct', 'c', { displayName: 'c', templateRefs: [{ name: 'ct' }] }],
    ['APIOperationSet', 'c-ops', { apiProductRefs: [{ name: 'c' }] }],
    ['ApimTemplate', 'ct', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'rc' }] }] }],
    ['ResponseCache', 'rc', { scope: 'product', cacheResource: 'answers', store: 'redis' }],
  ];
}

const manifests = (upstream: string, quota: { limit: number; timeUnit: 'minute' | 'hour' }): Manifest[] => documents(upstream, quota).map(([kind, name, spec]) => manifest(kind, name, spec));

const ask = (gw: Gateway, key: string, content = 'Hello?'): Promise<Answer> =>
  call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', temperature: 0, messages: [{ role: 'user', content }] }, { 'x-api-key': key });

const tally = (answers: Answer[]): string => JSON.stringify(answers.map((a) => `${a.status} ${codeOf(a) ?? ''}`.trim()).reduce<Record<string, number>>((t, k) => ({ ...t, [k]: (t[k] ?? 0) + 1 }), {}));

let stub: Stub;
before(async () => {
  stub = await startStub((r) =>
    json(r.res, 200, {
      id: 'c1',
      object: 'chat.completion',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: `You said: ${r.body?.messages?.[0]?.content}` }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
    }),
  );
});
after(() => stub?.close());

describe('two gateways on a Redis Cluster', { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
  const N = 30;
  const M = 90;
  let cluster: RedisClusterDeployment;
  let dir: string;
  const gateways: Gateway[] = [];

  before(async () => {
    cluster = await startRedisCluster();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-cluster-'));
    // Replicas on one host share one SQLite file (and learn of each other's changes from it).
    const options = { configPaths: [], manifests: manifests(stub.url, { limit: N, timeUnit: 'minute' }), ...LOOPBACK, db: `sqlite:${join(dir, 't.db')}`, redis: cluster.url, logger: silentLogger };
    for (const name of ['a', 'b']) gateways.push(await startGateway({ ...options, analyticsDir: join(dir, `analytics-${name}`) }));
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`a quota of ${N} over both gateways admits exactly ${N} of ${M} concurrent requests`, async () => {
    const { key } = await createApp(gateways[0].adminUrl, ['q'], 'cluster-quota');
    for (const g of gateways) await untilKeyKnown(g.url, key);
    await awayFromWindowEdge(MINUTE, 10_000);
    const answers = await Promise.all(Array.from({ length: M }, (_, i) => ask(gateways[i % 2], key)));
    assert.equal(answers.filter((a) => a.status === 200).length, N, tally(answers));
    assert.equal(answers.filter((a) => a.status === 429 && codeOf(a) === 'policies.ratelimit.QuotaViolation').length, M - N, tally(answers));
    for (const g of gateways) assert.equal((await quotaReport(g.url, key)).body.products[0].operationSets[0].quota.used, N);
  });

  test('answers cached through one gateway are hits on the other, and one purge empties every primary', async () => {
    const { key } = await createApp(gateways[0].adminUrl, ['c'], 'cluster-cache');
    for (const g of gateways) await untilKeyKnown(g.url, key);
    // Twelve answers: their keys land on every primary (but once in several thousand runs).
    const questions = Array.from({ length: 12 }, (_, i) => `Question ${i}?`);
    for (const q of questions) assert.equal((await ask(gateways[0], key, q)).headers['x-cache'], 'MISS');
    for (const q of questions) assert.equal((await ask(gateways[1], key, q)).headers['x-cache'], 'HIT', q);
    // A primary out of reach: the purge fails (nothing deleted) rather than report the others' entries as all.
    const restore = await cluster.cut(1);
    let purged: Answer;
    try {
      purged = await call(gateways[1].adminUrl, 'DELETE', '/v1/caches/answers/entries');
      // Before: 200 with the entries of the primaries still connected.
      assert.equal(purged.status, 503, JSON.stringify(purged.body));
      assert.equal(codeOf(purged), 'cache_unavailable');
    } finally {
      await restore();
    }
    purged = await until(() => call(gateways[1].adminUrl, 'DELETE', '/v1/caches/answers/entries'), (a) => a.status === 200, 10_000, 'a purge once every primary answers', 100);
    assert.equal(purged.body.entries, questions.length);
    for (const [i, g] of gateways.entries()) assert.equal((await ask(g, key, questions[i])).headers['x-cache'], 'MISS');
  });
});

describe('a gateway on a primary Sentinel watches', { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
  const PREFIX = 'tollgate:sentinel-test:';
  let sentinel: RedisSentinelDeployment;
  let dir: string;
  let gateway: Gateway;

  before(async () => {
    sentinel = await startRedisSentinel();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-sentinel-'));
    gateway = await startGateway({ configPaths: [], manifests: manifests(stub.url, { limit: 1000, timeUnit: 'hour' }), ...LOOPBACK, analyticsDir: join(dir, 'analytics'), redis: sentinel.url, redisKeyPrefix: PREFIX, logger: silentLogger });
  });
  after(async () => {
    await gateway?.close();
    await sentinel?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The request counts of the quota's window held on the server at `url`. */
  async function countsOn(url: string): Promise<number[]> {
    const redis = new Redis(url);
    try {
      const keys = await redis.keys(`${PREFIX}*`);
      const counts = await Promise.all(keys.map((k) => redis.type(k).then((t) => (t === 'hash' ? redis.hget(k, 'c') : null))));
      return counts.flatMap((c) => (c === null ? [] : [Number(c)]));
    } finally {
      redis.disconnect();
    }
  }

  test('counting goes on, on the new primary, after a failover', async () => {
    await awayFromWindowEdge(HOUR, 60_000);
    const { key } = await createApp(gateway.adminUrl, ['q'], 'sentinel');
    await untilKeyKnown(gateway.url, key);
    for (let i = 0; i < 5; i++) assert.equal((await ask(gateway, key)).status, 200);
    const before = await sentinel.primary();
    assert.deepEqual(await countsOn(before), [5]);

    await sentinel.failover();
    const primary = await sentinel.primary();
    assert.notEqual(primary, before);
    // Sentinel announces the switch (+switch-master) once the promotion is done, and the gateway moves then. The
    // old primary takes writes until Sentinel turns it into a replica (up to 10 s later): what a gateway sends there
    // meanwhile is lost with it, as with any client of Sentinel, so the requests of these seconds are not counted here.
    const moved = await until(
      async () => {
        await ask(gateway, key);
        return countsOn(primary);
      },
      (counts) => counts.length === 1 && counts[0] > 5,
      10_000,
      'a request counted on the new primary',
      100,
    );
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await ask(gateway, key));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200], tally(answers));
    assert.deepEqual(await countsOn(primary), [moved[0] + 5], 'every request after the switch is counted on the new primary, once');
    assert.equal((await quotaReport(gateway.url, key)).body.products[0].operationSets[0].quota.used, moved[0] + 5);
  });
});

describe('gateways on one Redis, kept apart by ?keyPrefix=', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, () => {
  const LIMIT = 3;
  const prefixes = [`tg-test-${randomBase62(8)}-a:`, `tg-test-${randomBase62(8)}-b:`];
  let dir: string;
  const gateways: Gateway[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-prefix-'));
    // One store (the same apps and keys), two deployments' prefixes: a and b, then a again.
    for (const [i, prefix] of [prefixes[0], prefixes[1], prefixes[0]].entries()) {
      gateways.push(
        await startGateway({
          configPaths: [],
          manifests: manifests(stub.url, { limit: LIMIT, timeUnit: 'hour' }),
          ...LOOPBACK,
          db: `sqlite:${join(dir, 't.db')}`,
          analyticsDir: join(dir, `analytics-${i}`),
          redis: `${process.env.REDIS_URL}?keyPrefix=${prefix}`,
          logger: silentLogger,
        }),
      );
    }
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    for (const prefix of prefixes) await deleteKeysAt(process.env.REDIS_URL!, prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a quota counts apart under each prefix, and together under one', async () => {
    await awayFromWindowEdge(HOUR, 60_000);
    const { key } = await createApp(gateways[0].adminUrl, ['q'], 'prefix');
    for (const g of gateways) await untilKeyKnown(g.url, key);
    const statuses = async (g: Gateway, n: number) => {
      const out = [];
      for (let i = 0; i < n; i++) out.push((await ask(g, key)).status);
      return out;
    };
    assert.deepEqual(await statuses(gateways[0], LIMIT + 1), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(gateways[1], LIMIT + 1), [200, 200, 200, 429], 'prefix b counts on its own');
    assert.deepEqual(await statuses(gateways[2], 1), [429], 'prefix a again: the first gateway\'s count');
    const redis = new Redis(process.env.REDIS_URL!);
    try {
      for (const prefix of prefixes) assert.ok((await redis.keys(`${prefix}counters:*`)).length > 0, `counters under ${prefix}`);
    } finally {
      redis.disconnect();
    }
  });
});

for (const [name, start] of [
  ['a cluster', startRedisCluster],
  ['Sentinels and their primary', startRedisSentinel],
] as const) {
  describe(`a gateway process on ${name} speaking TLS only (rediss+...)`, { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
    const LIMIT = 2;
    let dir: string;
    let deployment: RedisDeployment;
    let gateway: GatewayChild | undefined;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-tls-'));
      certificates(dir, { redis: 'IP:127.0.0.1' });
      deployment = await start({ password: 's3cret', tls: { cert: join(dir, 'redis.pem'), key: join(dir, 'redis.key'), ca: join(dir, 'ca.pem') } });
      // A private CA is trusted the way Node is told of one (as a platform team mounts its CA bundle).
      gateway = await startGatewayChild('tls', { manifests: documents(stub.url, { limit: LIMIT, timeUnit: 'hour' }), redis: deployment.url }, 60_000, { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    });
    after(async () => {
      if (gateway) await stopGatewayChild(gateway.child);
      await deployment?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('counts over TLS, with the password', async () => {
      assert.match(deployment.url, /^rediss\+/);
      await awayFromWindowEdge(HOUR, 60_000);
      const { key } = await createApp(gateway!.adminUrl, ['q'], 'tls');
      await untilKeyKnown(gateway!.url, key);
      const statuses = [];
      for (let i = 0; i < LIMIT + 1; i++) {
        statuses.push((await call(gateway!.url, 'POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'Hi' }] }, { 'x-api-key': key })).status);
      }
      assert.deepEqual(statuses, [200, 200, 429], gateway!.stderr());
      assert.doesNotMatch(gateway!.stderr(), /s3cret/);
    });
  });
}
