// Credentials on the deployments `--redis` names besides one server: a cluster whose nodes ask for a password, and a
// primary whose Sentinels ask for one too (what Bitnami's chart sets up by default).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CounterStoreUnavailableError } from './counters/errors.js';
import { RedisCounterStore } from './counters/redis.js';
import { REDIS_DEPLOYMENTS_SKIP, startRedisCluster, startRedisSentinel, type RedisDeployment } from './test-redis-servers.js';

const PASSWORD = 'p@ss word/1';

/** Counts once through `url`, or rejects as the store does when it cannot connect. */
async function countOnce(url: string): Promise<number> {
  const store = new RedisCounterStore({ url, keyPrefix: 'auth-test:' });
  try {
    await store.ready();
    return (await store.consume('k', 1, 100, 60_000)).count;
  } finally {
    await store.close();
  }
}

for (const [name, start, wrong] of [
  ['a cluster', startRedisCluster, (url: string) => url.replace(encodeURIComponent(PASSWORD), 'nope')],
  ['Sentinels and their primary', startRedisSentinel, (url: string) => url.replace(/\?sentinelPassword=.*$/, '')],
] as const) {
  describe(`${name} with a password`, { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
    let deployment: RedisDeployment;
    before(async () => {
      deployment = await start({ password: PASSWORD });
    });
    after(() => deployment?.stop());

    test('the URL\'s credentials reach every server; without them the store cannot connect, and says so', async () => {
      assert.equal(await countOnce(deployment.url), 1);
      assert.equal(await countOnce(deployment.url), 2);
      // Before, a cluster said only "Failed to refresh slots cache.", without the node's refusal.
      await assert.rejects(countOnce(wrong(deployment.url)), (err: Error) => err instanceof CounterStoreUnavailableError && /^Redis is unavailable: .*(WRONGPASS|NOAUTH)/.test(err.message) && !err.message.includes(PASSWORD));
    });
  });
}
