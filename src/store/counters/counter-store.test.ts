// The shared CounterStore suite: exactness under concurrency, windows, smoothing and reservations, on every backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { freePort } from '../../lib/ports.js';
import type { CounterStore } from './counter-store.js';
import { CounterStoreUnavailableError } from './errors.js';
import { MemoryCounterStore } from './memory.js';
import { RedisCounterStore } from './redis.js';
import { COUNTER_BACKENDS, type TestCounterStore } from './test-counter-stores.js';
import type { Redis } from 'ioredis';
import { loadIoredis } from '../ioredis.js';
import { TcpProxy } from '../test-tcp-proxy.js';
import { REDIS_DEPLOYMENTS_SKIP, startRedisCluster, startRedisSentinel, type RedisClusterDeployment } from '../test-redis-servers.js';
import { deleteKeysAt } from '../caches/redis.js';

/** A whole hour, so every window length used below starts exactly here. */
const HOUR_MS = 3_600_000;
const T0 = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
let keySeq = 0;
const key = (name: string) => `${name}:${++keySeq}`;

/** Exact sliding-window reference: allow iff what was allowed in (t - window, t] plus the amount fits. */
function referenceRolling(calls: Array<{ t: number; amount: number }>, limit: number, windowMs: number): boolean[] {
  const allowed: Array<{ t: number; amount: number }> = [];
  return calls.map(({ t, amount }) => {
    const used = allowed.filter((a) => a.t > t - windowMs).reduce((sum, a) => sum + a.amount, 0);
    if (used + amount > limit) return false;
    allowed.push({ t, amount });
    return true;
  });
}

for (const backend of COUNTER_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let handle: TestCounterStore;
    let counters: CounterStore;

    before(async () => {
      handle = await backend.create();
      counters = handle.store;
    });
    after(() => handle?.dispose());

    describe('fixed window (consume)', () => {
      test('counts exactly; a refused call consumes nothing', async () => {
        const k = key('fixed');
        assert.deepEqual(await counters.consume(k, 30, 50, 60_000, T0 + 5), { allowed: true, count: 30, remaining: 20, resetAtMs: T0 + 60_000 });
        assert.deepEqual(await counters.consume(k, 30, 50, 60_000, T0 + 6), { allowed: false, count: 30, remaining: 20, resetAtMs: T0 + 60_000 });
        assert.deepEqual(await counters.consume(k, 20, 50, 60_000, T0 + 7), { allowed: true, count: 50, remaining: 0, resetAtMs: T0 + 60_000 });
        assert.equal((await counters.consume(k, 1, 50, 60_000, T0 + 8)).allowed, false);
        assert.equal(await counters.get(k, T0 + 9), 50);
      });

      test('200 concurrent calls against a limit of 50: exactly 50 allowed', async () => {
        const k = key('race');
        const results = await Promise.all(Array.from({ length: 200 }, () => counters.consume(k, 1, 50, 60_000, T0)));
        assert.equal(results.filter((r) => r.allowed).length, 50);
        assert.equal(await counters.get(k, T0), 50);
      });

      test('a new window starts at the boundary', async () => {
        const k = key('rollover');
        await counters.consume(k, 10, 10, 1000, T0 + 999);
        assert.equal((await counters.consume(k, 1, 10, 1000, T0 + 999)).allowed, false);
        assert.deepEqual(await counters.consume(k, 1, 10, 1000, T0 + 1000), { allowed: true, count: 1, remaining: 9, resetAtMs: T0 + 2000 });
        assert.equal(await counters.get(k, T0 + 2000), 0);
      });
    });

    describe('rolling window (consumeRolling)', () => {
      test('an event counts for exactly one window length', async () => {
        const k = key('rolling');
        for (const t of [0, 100, 200]) assert.equal((await counters.consumeRolling(k, 1, 3, 1000, T0 + t)).allowed, true);
        assert.deepEqual(await counters.consumeRolling(k, 1, 3, 1000, T0 + 999), { allowed: false, count: 3, remaining: 0, resetAtMs: T0 + 1000 });
        assert.deepEqual(await counters.consumeRolling(k, 1, 3, 1000, T0 + 1000), { allowed: true, count: 3, remaining: 0, resetAtMs: T0 + 1100 });
      });

      test('a refusal resets when enough has left for the call to fit, not when the oldest slot leaves', async () => {
        const k = key('rolling-weighted');
        assert.equal((await counters.consumeRolling(k, 1, 10, 1000, T0)).allowed, true);
        assert.deepEqual(await counters.consumeRolling(k, 9, 10, 1000, T0 + 500), { allowed: true, count: 10, remaining: 0, resetAtMs: T0 + 1000 });
        // Before: T0 + 1000, when the slot of 1 leaves, which frees too little for 5.
        assert.deepEqual(await counters.consumeRolling(k, 5, 10, 1000, T0 + 500), { allowed: false, count: 10, remaining: 0, resetAtMs: T0 + 1500 });
        assert.deepEqual(await counters.consumeRolling(k, 5, 10, 1000, T0 + 1499), { allowed: false, count: 9, remaining: 1, resetAtMs: T0 + 1500 });
        assert.equal((await counters.consumeRolling(k, 5, 10, 1000, T0 + 1500)).allowed, true);

        // 100 slots of 1: a refused 40 fits once the 40 oldest have left; one more than the limit, once all have.
        const many = key('rolling-many');
        for (let t = 0; t < 100; t++) await counters.consumeRolling(many, 1, 100, 1000, T0 + t);
        assert.equal((await counters.consumeRolling(many, 40, 100, 1000, T0 + 99)).resetAtMs, T0 + 1039);
        assert.equal((await counters.consumeRolling(many, 101, 100, 1000, T0 + 99)).resetAtMs, T0 + 1099);
        assert.equal((await counters.consumeRolling(many, 40, 100, 1000, T0 + 1038)).allowed, false);
        assert.equal((await counters.consumeRolling(many, 40, 100, 1000, T0 + 1039)).allowed, true);
      });

      test('matches an exact sliding window on a random workload', async () => {
        const k = key('rolling-random');
        const calls: Array<{ t: number; amount: number }> = [];
        let t = T0;
        for (let i = 0; i < 300; i++) {
          t += Math.floor(Math.random() * 40);
          calls.push({ t, amount: 1 + Math.floor(Math.random() * 5) });
        }
        const expected = referenceRolling(calls, 40, 1000);
        const actual: boolean[] = [];
        for (const c of calls) actual.push((await counters.consumeRolling(k, c.amount, 40, 1000, c.t)).allowed);
        assert.deepEqual(actual, expected);
      });

      test('long windows never allow more than the limit in any window', async () => {
        const k = key('rolling-long');
        const windowMs = 60_000;
        const allowedAt: number[] = [];
        for (let t = T0; t < T0 + 3 * windowMs; t += 700) {
          if ((await counters.consumeRolling(k, 1, 20, windowMs, t)).allowed) allowedAt.push(t);
        }
        for (const end of allowedAt) assert.ok(allowedAt.filter((t) => t > end - windowMs && t <= end).length <= 20);
        // Slots are 60 ms wide, so capacity frees at most 60 ms late: three windows admit 3 × 20.
        assert.equal(allowedAt.length, 60);
      });

      test('200 concurrent calls against a limit of 50: exactly 50 allowed', async () => {
        const k = key('rolling-race');
        const results = await Promise.all(Array.from({ length: 200 }, () => counters.consumeRolling(k, 1, 50, 60_000, T0)));
        assert.equal(results.filter((r) => r.allowed).length, 50);
      });
    });

    describe('spike arrest (consumeSmoothed)', () => {
      test('one call per interval, with retry-after', async () => {
        const k = key('spike');
        assert.deepEqual(await counters.consumeSmoothed(k, 200, 1, T0), { allowed: true, retryAfterMs: 0 });
        assert.deepEqual(await counters.consumeSmoothed(k, 200, 1, T0 + 50), { allowed: false, retryAfterMs: 150 });
        assert.deepEqual(await counters.consumeSmoothed(k, 200, 1, T0 + 200), { allowed: true, retryAfterMs: 0 });
      });

      test('smooths a flood to the rate: 5 per second over 2 seconds of calls every 10 ms', async () => {
        const k = key('spike-flood');
        let allowed = 0;
        for (let t = 0; t < 2000; t += 10) if ((await counters.consumeSmoothed(k, 200, 1, T0 + t)).allowed) allowed++;
        assert.equal(allowed, 10);
      });

      test('burst admits that many back to back, then the rate', async () => {
        const k = key('spike-burst');
        const first = await Promise.all(Array.from({ length: 10 }, () => counters.consumeSmoothed(k, 100, 3, T0)));
        assert.equal(first.filter((r) => r.allowed).length, 3);
        assert.deepEqual(await counters.consumeSmoothed(k, 100, 3, T0 + 99), { allowed: false, retryAfterMs: 1 });
        assert.equal((await counters.consumeSmoothed(k, 100, 3, T0 + 100)).allowed, true);
      });

      test('weight counts one call as several', async () => {
        const k = key('spike-weight');
        assert.equal((await counters.consumeSmoothed(k, 100, 4, T0, 3)).allowed, true);
        assert.deepEqual(await counters.consumeSmoothed(k, 100, 4, T0, 3), { allowed: false, retryAfterMs: 200 });
      });
    });

    describe('adjust', () => {
      test('adds to the count, past any limit, never below 0', async () => {
        const k = key('adjust');
        await counters.consume(k, 40, 50, 60_000, T0);
        assert.equal(await counters.adjust(k, 20, 60_000, T0), 60);
        assert.equal(await counters.adjust(k, -100, 60_000, T0), 0);
      });

      test('adjusting after the window ended starts the next window', async () => {
        const k = key('adjust-late');
        await counters.consume(k, 10, 100, 1000, T0);
        assert.equal(await counters.adjust(k, 5, 1000, T0 + 1500), 5);
        assert.equal(await counters.get(k, T0 + 1500), 5);
      });
    });

    describe('token reservations (reserve / settle)', () => {
      let holdSeq = 0;
      /** A reservation's hold: a fresh id, held for a minute from `at`. */
      const hold = (at = T0, forMs = 60_000) => ({ id: `r${++holdSeq}`, untilMs: at + forMs });

      test('reserve never exceeds the limit; settle reconciles and never goes below 0', async () => {
        const k = key('tokens');
        const w = 60_000;
        const [a, b, c] = [hold(), hold(), hold()];
        assert.equal((await counters.reserve(k, 400, 1000, w, a, T0)).allowed, true);
        assert.equal((await counters.reserve(k, 400, 1000, w, b, T0)).allowed, true);
        assert.deepEqual(await counters.reserve(k, 400, 1000, w, hold(), T0), { allowed: false, count: 800, remaining: 200, resetAtMs: T0 + w, held: 800 });
        assert.equal(await counters.settle(k, a.id, -300), true);
        assert.equal(await counters.get(k, T0), 500);
        assert.equal((await counters.reserve(k, 400, 1000, w, c, T0)).count, 900);
        // The response used more than estimated: spent tokens count even past the limit.
        assert.equal(await counters.settle(k, b.id, 200), true);
        assert.equal(await counters.get(k, T0), 1100);
        assert.equal((await counters.reserve(k, 1, 1000, w, hold(), T0)).allowed, false);
        assert.equal(await counters.settle(k, c.id, -5000), true);
        assert.equal(await counters.get(k, T0), 0);
      });

      test('a reservation is settled once: settling it again (its answer was lost) changes nothing', async () => {
        const k = key('tokens-once');
        const h = hold();
        await counters.reserve(k, 500, 1000, 60_000, h, T0);
        assert.equal(await counters.settle(k, h.id, -400), true);
        assert.equal(await counters.settle(k, h.id, -400), false);
        assert.equal(await counters.get(k, T0), 100, 'refunded once, not twice');
        assert.equal(await counters.settle(k, 'never-reserved', -50), false);
        assert.equal(await counters.settle(key('no-counter'), h.id, -50), false);
        assert.equal(await counters.get(k, T0), 100);
      });

      test('held: what unsettled reservations hold, until settled or until their hold lapses', async () => {
        const k = key('tokens-held');
        const w = 60_000;
        const short = hold(T0, 1000);
        const long = hold(T0, 10_000);
        assert.equal((await counters.reserve(k, 300, 1000, w, short, T0)).held, 300);
        assert.equal((await counters.reserve(k, 600, 1000, w, long, T0)).held, 900);
        assert.deepEqual(await counters.reserve(k, 200, 1000, w, hold(), T0 + 999), { allowed: false, count: 900, remaining: 100, resetAtMs: T0 + w, held: 900 });
        assert.equal((await counters.reserve(k, 200, 1000, w, hold(), T0 + 1000)).held, 600, "the short hold lapsed: its tokens count, but no longer as a running request's");
        assert.equal(await counters.settle(k, long.id, -500), true);
        assert.equal((await counters.reserve(k, 1000, 1000, w, hold(), T0 + 1001)).held, 0, 'settled: held no more');
        // A lapsed reservation is still settled, once, and its hold is not taken off twice.
        assert.equal(await counters.settle(k, short.id, -300), true);
        assert.equal(await counters.get(k, T0 + 1001), 100);
        const next = hold(T0 + 1002);
        const r = await counters.reserve(k, 50, 1000, w, next, T0 + 1002);
        assert.deepEqual({ count: r.count, held: r.held }, { count: 150, held: 50 });
      });

      test('concurrent reservations stay within the limit', async () => {
        const k = key('tokens-race');
        const results = await Promise.all(Array.from({ length: 100 }, () => counters.reserve(k, 30, 1000, 60_000, hold(), T0)));
        assert.equal(results.filter((r) => r.allowed).length, 33);
        assert.equal(await counters.get(k, T0), 990);
        assert.equal(Math.max(...results.map((r) => r.held)), 990);
      });

      test('a new window starts empty: neither count, holds nor reservations of the last one', async () => {
        const k = key('tokens-next');
        const old = hold(T0, 5000);
        await counters.reserve(k, 10, 100, 1000, old, T0);
        const r = await counters.reserve(k, 5, 100, 1000, hold(T0 + 1500), T0 + 1500);
        assert.deepEqual({ count: r.count, held: r.held, resetAtMs: r.resetAtMs }, { count: 5, held: 5, resetAtMs: T0 + 2000 });
        assert.equal(await counters.settle(k, old.id, -10), false, "the last window's reservation is gone with it");
        assert.equal(await counters.get(k, T0 + 1500), 5);
      });
    });

    test('bad arguments are RangeErrors', async () => {
      await assert.rejects(async () => counters.consume('bad', -1, 10, 1000), RangeError);
      await assert.rejects(async () => counters.consume('bad', 1.5, 10, 1000), RangeError);
      await assert.rejects(async () => counters.consume('bad', 1, 10, 0), RangeError);
      await assert.rejects(async () => counters.consumeSmoothed('bad', 0, 1), RangeError);
      await assert.rejects(async () => counters.consumeSmoothed('bad', 100, 0), RangeError);
      await assert.rejects(async () => counters.adjust('bad', 0.5, 1000), RangeError);
      await assert.rejects(async () => counters.settle('bad', '', -1), RangeError);
      await assert.rejects(async () => counters.settle('bad', 'id', 0.5), RangeError);
      await assert.rejects(async () => counters.reserve('bad', 1, 10, 1000, { id: '', untilMs: T0 }), RangeError);
    });
  });
}

describe('memory only', () => {
  test('answers with its results themselves, and numbers reservations itself (settled once, as any other)', () => {
    const store = new MemoryCounterStore();
    const [a, b] = [store.newHoldId(), store.newHoldId()];
    assert.notEqual(a, b);
    assert.equal(store.reserve('t', 300, 1000, 60_000, { id: a, untilMs: T0 + 1000 }, T0).held, 300);
    assert.deepEqual(store.reserve('t', 200, 1000, 60_000, { id: b, untilMs: T0 + 1000 }, T0), { allowed: true, count: 500, remaining: 500, resetAtMs: T0 + 60_000, held: 500 });
    assert.equal(store.settle('t', a, -100), true);
    assert.equal(store.settle('t', a, -100), false, 'once');
    assert.equal(store.get('t', T0), 400);
    assert.throws(() => store.settle('t', 1.5, 0), RangeError);
  });

  test('sweeping forgets ended windows', async () => {
    const store = new MemoryCounterStore();
    await store.consume('a', 1, 10, 1000, T0);
    await store.consumeRolling('b', 1, 10, 1000, T0);
    await store.consumeSmoothed('c', 1000, 1, T0);
    store.sweep(T0 + 500);
    assert.equal(store.size, 3);
    store.sweep(T0 + 1001);
    assert.equal(store.size, 0);
    await store.close();
  });
});

describe('redis unavailable', () => {
  test('a closed port fails fast with CounterStoreUnavailableError', async () => {
    const store = new RedisCounterStore({ url: `redis://127.0.0.1:${await freePort()}` });
    try {
      const started = Date.now();
      await assert.rejects(store.ready(), CounterStoreUnavailableError);
      await assert.rejects(store.consume('k', 1, 10, 1000), CounterStoreUnavailableError);
      await assert.rejects(store.consumeSmoothed('k', 100, 1), CounterStoreUnavailableError);
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    } finally {
      await store.close();
    }
  });

  test('losing Redis mid-flight fails fast, and calls work again once it is back', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, async () => {
    const upstream = new URL(process.env.REDIS_URL!);
    const sockets = new Set<Socket>();
    const port = await freePort();
    const startProxy = () => {
      const server = createServer((client) => {
        const server = connect(Number(upstream.port || 6379), upstream.hostname);
        for (const s of [client, server]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(server).pipe(client);
      });
      return new Promise<typeof server>((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
    };
    let proxy = await startProxy();
    const keyPrefix = `tollgate:test:outage:${Date.now()}:`;
    const store = new RedisCounterStore({ url: `redis://127.0.0.1:${port}`, keyPrefix });
    // One instant for every call: a minute boundary between them started the count again (a flaky 1 !== 2).
    const now = Date.now();
    try {
      await store.ready();
      assert.equal((await store.consume('k', 1, 10, 60_000, now)).allowed, true);
      proxy.close();
      for (const s of sockets) s.destroy();
      const started = Date.now();
      await assert.rejects(store.consume('k', 1, 10, 60_000, now), CounterStoreUnavailableError);
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      proxy = await startProxy();
      await store.ready();
      assert.equal((await store.consume('k', 1, 10, 60_000, now)).count, 2);
    } finally {
      await store.close();
      proxy.close();
      for (const s of sockets) s.destroy();
      await deleteKeysAt(process.env.REDIS_URL!, keyPrefix);
    }
  });

  test('a settlement Redis applied but whose answer was lost: sent again, it changes nothing', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, async () => {
    const proxy = await TcpProxy.for(process.env.REDIS_URL!, 6379);
    const keyPrefix = `tollgate:test:lost-answer:${Date.now()}:`;
    const store = new RedisCounterStore({ url: proxy.proxied(process.env.REDIS_URL!), keyPrefix, commandTimeoutMs: 300 });
    try {
      await store.ready();
      const hold = { id: 'lost-answer-reservation', untilMs: T0 + 60_000 };
      await store.reserve('k', 1000, 5000, HOUR_MS, hold, T0);
      const lost = proxy.loseAnswerTo(hold.id);
      await assert.rejects(store.settle('k', hold.id, -900), CounterStoreUnavailableError);
      await lost;
      // Sent again (as TokensInFlight does) until Redis answers.
      let again: boolean | undefined;
      for (let tries = 0; again === undefined && tries < 100; tries++) {
        again = await store.settle('k', hold.id, -900).catch(() => new Promise<undefined>((r) => setTimeout(r, 50)));
      }
      assert.equal(again, false, 'it was applied the first time');
      assert.equal(await store.get('k', T0), 100, 'refunded once');
      assert.equal((await store.reserve('k', 1, 5000, HOUR_MS, { id: 'next', untilMs: T0 + 60_000 }, T0)).held, 1, 'its hold ended with it');
    } finally {
      await store.close();
      await proxy.close();
      await deleteKeysAt(process.env.REDIS_URL!, keyPrefix);
    }
  });

  test('a server refusing work for now (LOADING, at its maxclients) is an outage; any other error reply is not', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, async () => {
    const proxy = await TcpProxy.for(process.env.REDIS_URL!, 6379);
    const keyPrefix = `tollgate:test:replies:${Date.now()}:`;
    const store = new RedisCounterStore({ url: proxy.proxied(process.env.REDIS_URL!), keyPrefix });
    try {
      await store.ready();
      for (const reply of ['LOADING Redis is loading the dataset in memory', 'ERR max number of clients reached']) {
        proxy.replyErrors(reply);
        await assert.rejects(store.consume('k', 1, 10, 60_000), CounterStoreUnavailableError, reply);
      }
      proxy.replyErrors('ERR Error running script (call to f_0123): @user_script:1: bad');
      await assert.rejects(store.consume('k', 1, 10, 60_000), (err: unknown) => !(err instanceof CounterStoreUnavailableError));
    } finally {
      proxy.replyErrors(undefined);
      await store.close();
      await proxy.close();
      await deleteKeysAt(process.env.REDIS_URL!, keyPrefix);
    }
  });
});

describe('redis batches', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, () => {
  const url = process.env.REDIS_URL!;
  let keyPrefix: string;
  let store: RedisCounterStore;
  let client: Redis;
  let monitor: Redis;
  /** The calls the store made (not the commands its scripts ran), as MONITOR shows them. */
  let calls: string[][];
  before(async () => {
    keyPrefix = `tollgate:test:batches:${Date.now()}:`;
    store = new RedisCounterStore({ url, keyPrefix });
    await store.ready();
    // monitor() opens a connection of its own beside the client's.
    client = new (loadIoredis().Redis)(url);
    monitor = await client.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua' && args.some((a) => a.startsWith(keyPrefix))) calls.push(args);
    });
  });
  after(async () => {
    monitor?.disconnect();
    client?.disconnect();
    await store?.close();
    await deleteKeysAt(url, keyPrefix);
  });

  /** The store's calls on counters named `names` made while `work` runs, once MONITOR has shown them. */
  async function callsDuring(names: string[], work: () => Promise<unknown>): Promise<string[][]> {
    calls = [];
    await work();
    await store.get('flush-marker');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const theirs = new RegExp(`^${keyPrefix}[a-z]+:(${names.join('|')})$`);
    return calls.filter((args) => args.some((a) => theirs.test(a)));
  }

  test('the operations of one turn go in one call, and each sees the ones before it', async () => {
    let results: unknown[] = [];
    const sent = await callsDuring(['turn', 'tokens', 'rolling'], async () => {
      results = await Promise.all([
        ...Array.from({ length: 5 }, () => store.consume('turn', 1, 3, HOUR_MS, T0)),
        store.consumeSmoothed('turn', 1000, 1, T0),
        store.consumeSmoothed('turn', 1000, 1, T0),
        store.reserve('tokens', 40, 50, HOUR_MS, { id: 'r1', untilMs: T0 + 60_000 }, T0),
        store.reserve('tokens', 40, 50, HOUR_MS, { id: 'r2', untilMs: T0 + 60_000 }, T0),
        store.consumeRolling('rolling', 2, 3, HOUR_MS, T0),
        store.consumeRolling('rolling', 2, 3, HOUR_MS, T0),
      ]);
    });
    // Before: one EVALSHA per operation, eleven calls.
    assert.equal(sent.length, 1, sent.map((a) => a.slice(0, 4).join(' ')).join('\n'));
    const allowed = results.map((r) => (r as { allowed: boolean }).allowed);
    assert.deepEqual(allowed, [true, true, true, false, false, true, false, true, false, true, false]);
    assert.equal(await store.get('turn', T0), 3);
  });

  test('a turn of thousands goes in calls of at most 128, so the server serves others between them', async () => {
    let results: { allowed: boolean }[] = [];
    const sent = await callsDuring(['crowded'], async () => {
      results = await Promise.all(Array.from({ length: 300 }, () => store.consume('crowded', 1, 250, HOUR_MS, T0)));
    });
    assert.deepEqual(
      // EVALSHA sha numkeys KEYS... ARGV...: ARGV[1] is the count of operations.
      sent.map((args) => Number(args[3 + Number(args[2])])),
      [128, 128, 44],
      'operations per call',
    );
    assert.equal(results.filter((r) => r.allowed).length, 250);
    assert.deepEqual(results.map((r) => r.allowed), [...Array(250).fill(true), ...Array(50).fill(false)], 'in the order asked');
  });

  test('get is ordered after what was asked for before it in the same turn; close sends what its turn asked for', async () => {
    const [, , count] = await Promise.all([store.consume('ordered', 5, 10, HOUR_MS, T0), store.adjust('ordered', 2, HOUR_MS, T0), store.get('ordered', T0)]);
    // Before: the read left at once, ahead of the turn's call, and answered 0.
    assert.equal(count, 7);
    const closing = new RedisCounterStore({ url, keyPrefix });
    await closing.ready();
    const adjusted = closing.adjust('closing', 3, HOUR_MS, T0);
    await closing.close();
    // Before: QUIT left first and the adjustment failed with the connection.
    assert.equal(await adjusted, 3);
    assert.equal(await store.get('closing', T0), 3);
  });

  test('an operation that fails (a key of the wrong type) fails alone', async () => {
    const raw = new (loadIoredis().Redis)(url);
    try {
      await raw.hset(`${keyPrefix}sa:wrong-type`, 'x', '1');
      const [smoothed, fixed] = await Promise.allSettled([store.consumeSmoothed('wrong-type', 1000, 1, T0), store.consume('beside-it', 1, 10, HOUR_MS, T0)]);
      assert.equal(smoothed.status, 'rejected');
      assert.match(String((smoothed as PromiseRejectedResult).reason), /WRONGTYPE/);
      assert.ok(!((smoothed as PromiseRejectedResult).reason instanceof CounterStoreUnavailableError), 'a bad reply is no outage');
      assert.deepEqual(fixed.status === 'fulfilled' && fixed.value.count, 1);
    } finally {
      raw.disconnect();
    }
  });

  test('an operation whose caller gave up before the call of its turn left is never sent', async () => {
    calls = [];
    const given = store.consume('given-up', 1, 10, HOUR_MS, T0);
    store.abandonPending();
    await assert.rejects(given, CounterStoreUnavailableError);
    // Giving up drops the connection (it may be stalled): the count is read once the store has reconnected.
    assert.equal(await countOnceAnswering(store, 'given-up', T0), 0);
    assert.deepEqual(
      calls.filter((args) => args.includes(`${keyPrefix}fw:given-up`) && args[0].toLowerCase() !== 'hmget'),
      [],
    );
    assert.equal((await store.consume('given-up', 1, 10, HOUR_MS, T0)).count, 1, 'later calls are sent');
  });
});

describe('a primary demoted behind a name that moves (a managed primary endpoint)', { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
  test('its READONLY answers make the store reconnect, through the name, to the new primary', { timeout: 120_000 }, async () => {
    const deployment = await startRedisSentinel();
    const oldPrimary = await deployment.primary();
    // The name: a proxy that leads new connections where the primary is.
    const proxy = await TcpProxy.for(oldPrimary, 6379);
    const store = new RedisCounterStore({ url: proxy.proxied(oldPrimary), keyPrefix: 'tollgate:test:demoted:' });
    const demoted = new (loadIoredis().Redis)(oldPrimary);
    try {
      await store.ready();
      assert.equal((await store.consume('k', 1, 100, HOUR_MS, T0)).count, 1);
      await deployment.failover();
      const newPrimary = new URL(await deployment.primary());
      proxy.retarget(newPrimary.href, 6379);
      // What Sentinel tells the old primary at its next look (up to 10 s later), told at once.
      await demoted.replicaof(newPrimary.hostname, Number(newPrimary.port));
      let count: number | undefined;
      for (const until = Date.now() + 10_000; count === undefined && Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
        count = await store.consume('k', 1, 100, HOUR_MS, T0).then(
          (r) => r.count,
          () => undefined,
        );
      }
      // Before: every call failed with READONLY for good, the batch's operations answering it one by one inside a
      // reply that succeeded, which never made the client reconnect.
      assert.ok(count !== undefined && count >= 2, `counted on the new primary: ${count}`);
    } finally {
      demoted.disconnect();
      await store.close();
      await proxy.close();
      await deployment.stop();
    }
  });
});

/** The counter `key` as soon as the store answers again (within 10 s), or undefined. */
async function countOnceAnswering(store: CounterStore, key: string, now: number): Promise<number | undefined> {
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    const count = await Promise.resolve(store.get(key, now)).catch(() => undefined);
    if (count !== undefined) return count;
  }
  return undefined;
}

describe('redis cluster partitions', { skip: REDIS_DEPLOYMENTS_SKIP }, () => {
  let cluster: RedisClusterDeployment;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(() => cluster?.stop());

  test('a command abandoned in a partition is never applied once the partition heals', async () => {
    const store = new RedisCounterStore({ url: cluster.url, keyPrefix: 'stall:', commandTimeoutMs: 300 });
    const now = Date.now();
    try {
      await store.ready();
      assert.equal((await store.consume('k', 1, 10, 60_000, now)).count, 1);
      const heal = cluster.partition();
      try {
        await assert.rejects(store.consume('k', 1, 10, 60_000, now), CounterStoreUnavailableError);
        // Long enough for a client that sends a command again after its connection closed (100 ms) to have done so.
        await new Promise((r) => setTimeout(r, 400));
      } finally {
        heal();
      }
      const count = await countOnceAnswering(store, 'k', now);
      // What the healed connections still carried has arrived (and been redirected to its node, if it went elsewhere).
      await new Promise((r) => setTimeout(r, 500));
      // Before: the node's connection was reset while the cluster client stayed ready, and it sent the command again
      // 100 ms later on another connection, which delivered it once the partition healed: 2.
      assert.equal(await store.get('k', now), 1);
      assert.equal(count, 1);
    } finally {
      await store.close();
    }
  });

  test('calls refused during a partition are never counted once it heals', async () => {
    const name = 'b';
    const owner = await cluster.ownerOf(name);
    const store = new RedisCounterStore({ url: cluster.url, keyPrefix: 'during:', commandTimeoutMs: 300 });
    const now = Date.now();
    try {
      await store.ready();
      let counted = (await store.consume(name, 1, 1000, 60_000, now)).count;
      const heal = cluster.partition([owner]);
      try {
        // Calls keep coming while the node is out of reach, as requests do: each one refused at its deadline.
        for (const until = Date.now() + 1500; Date.now() < until; ) {
          const r = await store.consume(name, 1, 1000, 60_000, now).catch(() => undefined);
          if (r?.allowed) counted = r.count;
        }
        await new Promise((r) => setTimeout(r, 400));
      } finally {
        heal();
      }
      assert.notEqual(await countOnceAnswering(store, name, now), undefined, 'the store answers again');
      await new Promise((r) => setTimeout(r, 500));
      // Before: the calls handed to the node's new connections while it was out of reach were sent again by the
      // cluster client every 100 ms, long after their callers were told no, and counted once it answered.
      assert.equal(await store.get(name, now), counted);
    } finally {
      await store.close();
    }
  });

  test('a stalled node is dropped alone: the client keeps the nodes it found, and counts on when the URL\'s node is gone', async () => {
    // A counter on a node other than the one the URL names.
    let name = 'a';
    while ((await cluster.ownerOf(name)) === 0) name += 'a';
    const owner = await cluster.ownerOf(name);
    const store = new RedisCounterStore({ url: cluster.urlOf(0), keyPrefix: 'alone:', commandTimeoutMs: 300 });
    const now = Date.now();
    let restore: (() => Promise<void>) | undefined;
    try {
      await store.ready();
      assert.equal((await store.consume(name, 1, 10, 60_000, now)).count, 1);
      restore = await cluster.cut(0);
      const heal = cluster.partition([owner]);
      try {
        await assert.rejects(store.consume(name, 1, 10, 60_000, now), CounterStoreUnavailableError);
        // The reset reaches the proxy before the partition heals (else it would deliver what it held).
        await new Promise((r) => setTimeout(r, 400));
      } finally {
        heal();
      }
      // Before: the whole cluster client was disconnected and connected again through the URL's node alone, which
      // was gone: every call failed from then on.
      const count = await countOnceAnswering(store, name, now);
      assert.equal(count, 1);
      assert.equal((await store.consume(name, 1, 10, 60_000, now)).count, 2);
    } finally {
      await restore?.();
      await store.close();
    }
  });
});
