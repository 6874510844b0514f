// The answer-cache contract every backend passes (memory, Redis), then the memory LRU's byte budget.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryCacheStore } from './memory.js';
import { RedisCacheStore, deleteKeysAt, openCacheRedis, redisReady } from './redis.js';
import { silentLogger } from '../../lib/logger.js';
import { CacheStoreUnavailableError } from './cache-store.js';
import { CACHE_BACKENDS, type TestCacheStore } from './test-cache-stores.js';
import { randomBase62 } from '../keys.js';
import { TcpProxy } from '../test-tcp-proxy.js';
import { stall } from '../../lib/test-stall.js';

const REDIS_URL = process.env.REDIS_URL;
const REDIS_SKIP = REDIS_URL ? undefined : 'REDIS_URL not set';

for (const backend of CACHE_BACKENDS) {
  describe(`cache store on ${backend.name}`, { skip: backend.skip }, () => {
    let handle: TestCacheStore;
    before(async () => {
      handle = await backend.create({ maxValueBytes: 4096 });
    });
    after(() => handle?.dispose());

    test('a purge deletes every entry, wherever it is kept, and says how many', async () => {
      // Twenty keys land on every primary of a cluster (but once in a thousand prefixes), whose purge walks each of them.
      const keys = Array.from({ length: 20 }, (_, i) => `purge-${i}`);
      await Promise.all(keys.map((k) => handle.store.set(k, Buffer.from(k), 60_000)));
      assert.equal(await handle.purge(), 20);
      assert.deepEqual(await Promise.all(keys.map((k) => handle.store.get(k))), keys.map(() => undefined));
    });

    test('a value comes back byte for byte; an unknown key is undefined', async () => {
      const value = Buffer.from([0, 1, 2, 255, 254, 0x7b]);
      await handle.store.set('a', value, 60_000);
      assert.deepEqual(await handle.store.get('a'), value);
      assert.equal(await handle.store.get('nope'), undefined);
    });

    test('set replaces the value', async () => {
      await handle.store.set('b', Buffer.from('one'), 60_000);
      await handle.store.set('b', Buffer.from('two'), 60_000);
      assert.equal((await handle.store.get('b'))?.toString(), 'two');
    });

    test('an entry expires after its time to live', async () => {
      await handle.store.set('c', Buffer.from('soon gone'), 60);
      assert.equal((await handle.store.get('c'))?.toString(), 'soon gone');
      await sleep(120);
      assert.equal(await handle.store.get('c'), undefined);
    });

    test('a value over the size limit is not stored', async () => {
      await handle.store.set('big', Buffer.alloc(8192), 60_000);
      assert.equal(await handle.store.get('big'), undefined);
    });
  });
}

describe('memory LRU', () => {
  test('the least recently used entries go first when the byte budget is exceeded', () => {
    const store = new MemoryCacheStore({ maxBytes: 3 * (100 + 2 + 160) });
    for (const k of ['a', 'b', 'c']) store.set(k, Buffer.alloc(100), 60_000);
    assert.ok(store.get('a'), 'a hit makes "a" the most recent');
    store.set('d', Buffer.alloc(100), 60_000);
    assert.equal(store.get('b'), undefined, 'b was the least recently used');
    assert.ok(store.get('a') && store.get('c') && store.get('d'));
    assert.ok(store.bytes <= 3 * 262);
  });

  test('expiry follows the injected clock and frees the bytes', () => {
    let t = 0;
    const store = new MemoryCacheStore({ now: () => t });
    store.set('k', Buffer.alloc(10), 1000);
    t = 999;
    assert.ok(store.get('k'));
    t = 1000;
    assert.equal(store.get('k'), undefined);
    assert.equal(store.bytes, 0);
  });
});

describe('redis outage', () => {
  test('an unreachable Redis fails fast with CacheStoreUnavailableError', async () => {
    const store = new RedisCacheStore({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 100 });
    try {
      await assert.rejects(Promise.resolve(store.get('k')), CacheStoreUnavailableError);
    } finally {
      await store.close();
    }
  });
});

/** A Redis cache store whose connection goes through a TCP proxy the test can stall or freeze; `close` ends both. */
async function storeBehindProxy(keyPrefix: string): Promise<{ proxy: TcpProxy; store: RedisCacheStore; close: () => Promise<void> }> {
  const proxy = await TcpProxy.for(REDIS_URL!, 6379);
  const client = openCacheRedis(proxy.proxied(REDIS_URL!), silentLogger);
  await redisReady(client);
  const store = new RedisCacheStore({ client, keyPrefix, commandTimeoutMs: 200 });
  return {
    proxy,
    store,
    close: async () => {
      client.disconnect();
      await proxy.close();
    },
  };
}

describe('redis deadlines', { skip: REDIS_SKIP }, () => {
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  after(() => deleteKeysAt(REDIS_URL!, keyPrefix));

  test('a stalled connection: a lookup is a CacheStoreUnavailableError within the command timeout', async () => {
    const { proxy, store, close } = await storeBehindProxy(keyPrefix);
    try {
      await store.set('k', Buffer.from('v'), 60_000);
      proxy.stall();
      const started = performance.now();
      await assert.rejects(Promise.resolve(store.get('k')), CacheStoreUnavailableError);
      assert.ok(performance.now() - started < 1000, 'failed within the deadline, not when the connection came back');
    } finally {
      proxy.unstall();
      await close();
    }
  });

  test('a connection gone silent is dropped at its first timeout: the next lookups reach Redis again', async () => {
    const { proxy, store, close } = await storeBehindProxy(keyPrefix);
    try {
      await store.set('silent', Buffer.from('answer'), 60_000);
      proxy.freezeOpen();
      await assert.rejects(Promise.resolve(store.get('silent')), CacheStoreUnavailableError);
      // Before: every later lookup timed out too, queued behind the first (with the answers being stored) in memory,
      // for as long as the socket lived, while Redis itself was fine.
      let got;
      for (const until = Date.now() + 3000; !got && Date.now() < until; await sleep(50)) got = await Promise.resolve(store.get('silent')).catch(() => undefined);
      assert.equal(got?.toString(), 'answer');
    } finally {
      await close();
    }
  });

  test('an event-loop stall longer than the deadline does not turn a lookup Redis answered into a miss', async () => {
    const client = openCacheRedis(REDIS_URL!, silentLogger);
    await redisReady(client);
    const store = new RedisCacheStore({ client, keyPrefix, commandTimeoutMs: 200 });
    try {
      await store.set('stalled', Buffer.from('answer'), 60_000);
      const pending = store.get('stalled');
      // Before: ioredis's commandTimeout fired first and the answer waiting in the socket was dropped.
      stall(1000);
      assert.equal((await pending)?.toString(), 'answer');
    } finally {
      client.disconnect();
    }
  });
});
