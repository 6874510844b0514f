// A token reservation's settlement when Redis cannot take it as the request ends (through a TCP proxy in front of the
// shared Redis, cut and restored; a lost answer): kept and tried again until it lands, and applied once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { policyKeys, windowKey } from '../src/policy/counter-keys.js';
import { windowsOf } from '../src/policy/quota-window.js';
import { randomBase62 } from '../src/store/keys.js';
import { RedisCounterStore } from '../src/store/counters/redis.js';
import { BATCH } from '../src/store/counters/redis-scripts.js';
import { COUNTER_BACKENDS } from '../src/store/counters/test-counter-stores.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { call, until, type Answer } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const redisSkip = COUNTER_BACKENDS.find((b) => b.name === 'redis')!.skip;

const MESSAGES = [{ role: 'user', content: 'How many tokens will this take?' }];
const PROMPT = countChatTokens(MESSAGES);
const MAX_TOKENS = 2000;
const COMPLETION = 12;
const LIMIT = 100_000;

describe('a token settlement while Redis cannot take it', { skip: redisSkip }, () => {
  const keyPrefix = `tollgate:test:settle-outage-${randomBase62(10)}:`;
  /** The token quota's counter today, as the gateway names it. */
  const counterKey = () => windowKey(policyKeys('tq', 'daily-tokens')(''), windowsOf(1, 'day')(Date.now()));
  let stub: Stub;
  let proxy: TcpProxy;
  let gw: Gateway;
  /** Straight to Redis, past the proxy: what the counter holds whatever the gateway's connection goes through. */
  let direct: RedisCounterStore;
  /** The stub's answers, held until the test sends them. */
  const held: (() => void)[] = [];

  before(async () => {
    stub = await startStub((r) => {
      held.push(() =>
        json(r.res, 200, { ...chatAnswer('ok', r.body?.model), usage: { prompt_tokens: PROMPT, completion_tokens: COMPLETION, total_tokens: PROMPT + COMPLETION } }),
      );
    });
    proxy = await TcpProxy.for(REDIS_URL!, 6379);
    gw = await startGateway({
      configPaths: [],
      manifests: [
        ...poolAndModel([stub.url]),
        manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, failOpen: false, timeout: '300ms', targetRef: { name: 'tollgate', kind: 'Gateway' } }),
        manifest('LLMTokenQuota', 'daily-tokens', { limit: LIMIT, interval: 1, timeUnit: 'day', countOn: 'total' }),
        manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'daily-tokens' }] }] }),
      ],
      ...LOOPBACK,
      redis: proxy.proxied(REDIS_URL!),
      redisKeyPrefix: keyPrefix,
    });
    await untilEndpoints(gw);
    direct = new RedisCounterStore({ url: REDIS_URL!, keyPrefix: `${keyPrefix}counters:` });
    await direct.ready();
  });

  after(async () => {
    held.splice(0).forEach((send) => send());
    await gw?.close();
    await direct?.close();
    await proxy?.close();
    await stub?.close();
    if (REDIS_URL) await deleteKeysAt(REDIS_URL, keyPrefix);
  });

  const used = () => direct.get(counterKey());
  const outcome = async (name: string): Promise<number> => Number((await gw.registry.metrics()).match(new RegExp(`^tollgate_counter_store_errors_total\\{outcome="${name}"\\} (\\d+)`, 'm'))?.[1]);
  const outcomes = async () => ({ deferred: await outcome('deferred'), settled_late: await outcome('settled_late'), unsettled: await outcome('unsettled') });

  /** A request the stub holds: resolves with its answer once `answer()` has been called. */
  async function heldRequest(): Promise<{ answer: () => void; done: Promise<Answer> }> {
    const before = held.length;
    const done = call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: MESSAGES, max_tokens: MAX_TOKENS });
    await until(async () => held.length, (n) => n > before, 10_000, 'the stub has the request');
    return { answer: held.pop()!, done };
  }

  test('cut as the request ends: the settlement is kept, and lands once Redis is back', async () => {
    const base = await used();
    const request = await heldRequest();
    assert.equal(await used(), base + PROMPT + MAX_TOKENS, 'reserved');
    await proxy.cut();
    try {
      request.answer();
      assert.equal((await request.done).status, 200);
      await until(outcomes, (o) => o.deferred === 1, 5000, 'the settlement kept');
      // Before: dropped here, and the whole reservation stayed on the counter until midnight.
      assert.equal(await used(), base + PROMPT + MAX_TOKENS, 'not settled while Redis is away');
    } finally {
      await proxy.restore();
    }
    await until(used, (n) => n === base + PROMPT + COMPLETION, 15_000, 'settled to the usage once Redis is back');
    // Counted once the gateway has Redis's answer, which may come a moment after the counter changed.
    await until(outcomes, (o) => o.settled_late === 1, 5000, 'counted as settled late');
    assert.deepEqual(await outcomes(), { deferred: 1, settled_late: 1, unsettled: 0 });
  });

  test('applied, but its answer lost: tried again, it is not applied twice', async () => {
    // Calls before this one have loaded the batch script into Redis, so the settlement is sent as EVALSHA of it, the
    // first after the request's reservation.
    const sha = createHash('sha1').update(BATCH).digest('hex');
    const was = await outcomes();
    const base = await used();
    const request = await heldRequest();
    const lost = proxy.loseAnswerTo(sha);
    request.answer();
    assert.equal((await request.done).status, 200);
    await lost;
    await until(outcomes, (o) => o.settled_late === was.settled_late + 1, 15_000, 'settled on a try again');
    assert.equal(await used(), base + PROMPT + COMPLETION, 'given back once');
    assert.deepEqual(await outcomes(), { deferred: was.deferred + 1, settled_late: was.settled_late + 1, unsettled: 0 });
  });
});
