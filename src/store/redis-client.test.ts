// Credentials on the deployments `--redis` names besides one server: a cluster whose nodes ask for a password, and a
// primary whose Sentinels ask for one too (what Bitnami's chart sets up by default); and a refused one kept out of logs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { CounterStoreUnavailableError } from './counters/errors.js';
import { RedisCounterStore } from './counters/redis.js';
import { openRedisClient } from './redis-client.js';
import { parseRedisTarget } from './redis-target.js';
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

test('a refused AUTH reaches the error handler (a debug log line) without its arguments, the password', async () => {
  // A server refusing every login, as a Redis whose password changed before the gateway's did.
  const server = createServer((socket) => socket.on('data', () => socket.write('-WRONGPASS invalid username-password pair or user is disabled.\r\n')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const errors: Error[] = [];
  const client = openRedisClient(parseRedisTarget(`redis://bob:WrongS3cret@127.0.0.1:${(server.address() as AddressInfo).port}`), { connectTimeoutMs: 500, onError: (err) => errors.push(err) });
  try {
    for (const until = Date.now() + 5000; errors.length === 0 && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(errors.length > 0);
    // Before: {"command":{"name":"auth","args":["bob","WrongS3cret"]}, ...} in every such line.
    for (const err of errors) assert.doesNotMatch(JSON.stringify({ ...err, message: err.message }), /WrongS3cret/);
    assert.match(errors[0].message, /WRONGPASS/);
  } finally {
    client.disconnect();
    server.close();
  }
});
