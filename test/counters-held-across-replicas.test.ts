// Two gateways sharing Redis: a token-quota refusal that only a request still running on the other replica causes
// says `retry-after: 1` on both, not the window's end (the reservation's hold lives in Redis with the count).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { randomBase62 } from '../src/store/keys.js';
import { COUNTER_BACKENDS } from '../src/store/counters/test-counter-stores.js';
import { awayFromWindowEdge, call, codeOf, until, type Answer } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const redisSkip = COUNTER_BACKENDS.find((b) => b.name === 'redis')!.skip;

const HOUR = 3_600_000;
const MESSAGES = [{ role: 'user', content: 'Write a long story.' }];
const PROMPT = countChatTokens(MESSAGES);
const LIMIT = 3000;

describe('a token quota shared by two replicas', { skip: redisSkip }, () => {
  const keyPrefix = `tollgate:test:held-${randomBase62(10)}:`;
  let stub: Stub;
  const replicas: Gateway[] = [];
  /** The stub's answers, held until the test sends them. */
  const held: (() => void)[] = [];

  function answer(r: StubRequest): void {
    json(r.res, 200, {
      id: 'chatcmpl-stub',
      object: 'chat.completion',
      model: r.body?.model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: PROMPT, completion_tokens: 10, total_tokens: PROMPT + 10 },
    });
  }

  before(async () => {
    stub = await startStub((r) => void held.push(() => answer(r)));
    for (let i = 0; i < 2; i++) {
      const gw = await startGateway({
        configPaths: [],
        manifests: [
          ...poolAndModel([stub.url]),
          manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
          manifest('LLMTokenQuota', 'tokens', { limit: LIMIT, interval: 1, timeUnit: 'hour', countOn: 'total' }),
          manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
        ],
        ...LOOPBACK,
        redis: REDIS_URL,
        redisKeyPrefix: keyPrefix,
      });
      replicas.push(gw);
      await untilEndpoints(gw);
    }
  });

  after(async () => {
    held.splice(0).forEach((send) => send());
    for (const gw of replicas) await gw.close();
    await stub?.close();
    if (REDIS_URL) await deleteKeysAt(REDIS_URL, keyPrefix);
  });

  const chat = (gw: Gateway, maxTokens: number): Promise<Answer> => call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: MESSAGES, max_tokens: maxTokens });

  test('refused while the other replica runs a request holding the quota: retry in a moment, on either replica', async () => {
    await awayFromWindowEdge(HOUR, 30_000);
    const [a, b] = replicas;
    const running = chat(a, 2500);
    await until(async () => held.length, (n) => n === 1, 10_000, 'the stub has the long request');
    for (const [gw, where] of [[a, 'the replica running it'], [b, 'the other replica']] as const) {
      const refused = await chat(gw, 800);
      assert.equal(refused.status, 429, where);
      assert.equal(codeOf(refused), 'policies.llmtokenquota.LLMTokenQuotaViolation', where);
      // Before: on the other replica, the seconds to the hour's end (2558 in the report that found it).
      assert.equal(refused.headers['retry-after'], '1', where);
      assert.match(refused.body.error.message, new RegExp(`${PROMPT + 2500} of them are held by requests in flight`), where);
    }
    held.pop()!();
    assert.equal((await running).status, 200);
    const next = chat(b, 800);
    await until(async () => held.length, (n) => n === 1, 10_000, 'the next request admitted on the other replica');
    held.pop()!();
    assert.equal((await next).status, 200);
  });
});
