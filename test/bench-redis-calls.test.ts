// bench overhead --redis counts the script calls Redis served (INFO commandstats) to report the calls per request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisCalls, scriptCallsIn } from '../bench/redis-calls.js';
import { freePort } from '../src/lib/ports.js';
import { loadIoredis } from '../src/store/ioredis.js';

test('EVAL and EVALSHA calls are read from INFO commandstats, nothing else', () => {
  const info = [
    '# Commandstats',
    'cmdstat_evalsha:calls=1854228,usec=27530846,usec_per_call=14.85,rejected_calls=0,failed_calls=0',
    'cmdstat_eval:calls=64,usec=4635,usec_per_call=72.42,rejected_calls=0,failed_calls=0',
    'cmdstat_eval_ro:calls=5,usec=10,usec_per_call=2.00,rejected_calls=0,failed_calls=0',
    'cmdstat_hset:calls=1854292,usec=935666,usec_per_call=0.50,rejected_calls=0,failed_calls=0',
  ].join('\r\n');
  assert.equal(scriptCallsIn(info), 1854228 + 64);
  assert.equal(scriptCallsIn('# Commandstats\r\n'), 0);
});

test('a running Redis: the calls served rise with the scripts run', { skip: process.env.REDIS_URL ? false : 'REDIS_URL not set' }, async () => {
  const calls = new RedisCalls(process.env.REDIS_URL!);
  const client = new (loadIoredis().Redis)(process.env.REDIS_URL!);
  try {
    const before = await calls.total();
    assert.ok(before !== undefined);
    for (let i = 0; i < 3; i++) await client.eval('return 1', 0);
    // Other work on the same server can only add to it.
    assert.ok(((await calls.total()) ?? 0) - before >= 3);
  } finally {
    client.disconnect();
    await calls.close();
  }
});

test('a Redis that will not answer gives no figure, never a failure: the other results of the run stand', async () => {
  const calls = new RedisCalls(`redis://127.0.0.1:${await freePort()}`);
  try {
    // Before: the rejection ended the benchmark after every scenario had been measured.
    assert.equal(await calls.total(), undefined);
  } finally {
    await calls.close();
  }
});
