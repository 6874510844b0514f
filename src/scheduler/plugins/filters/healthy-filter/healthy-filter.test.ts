import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { FAILURES_BEFORE_UNHEALTHY } from '../../../endpoint-state.js';
import { HEALTHY_FILTER, healthyFilter } from './healthy-filter.js';

describe(HEALTHY_FILTER, () => {
  const filter = healthyFilter(HEALTHY_FILTER, {}, deps()); // staleAfter 2 s

  test('keeps fresh healthy endpoints, drops stale, failing and reported-down ones', () => {
    const now = 10_000;
    const fresh = endpoint(1, {}, now);
    const stale = endpoint(2, {}, now - 2001);
    const failing = endpoint(3, {}, now);
    for (let i = 0; i < FAILURES_BEFORE_UNHEALTHY; i++) failing.recordScrapeFailure('timeout');
    const down = endpoint(4, {}, now);
    down.reportDown('refused');
    const edge = endpoint(5, {}, now - 2000);
    const eps = [fresh, stale, failing, down, edge];
    const kept = filter.filter(ctx({}, { now }), eps);
    assert.deepEqual(kept.map((ep) => eps.indexOf(ep)), [0, 4]);
  });

  test('returns the same array when all pass (no allocation)', () => {
    const eps = [endpoint(1), endpoint(2)];
    assert.equal(filter.filter(ctx(), eps), eps);
  });

  test('an endpoint whose answers fail (5xx, 429) rests while others remain, twice as long each time in a row', () => {
    const now = 10_000;
    const failing = endpoint(1, {}, now);
    const fine = endpoint(2, {}, now);
    failing.recordAnswered(now, 503);
    assert.deepEqual(filter.filter(ctx({}, { now: now + 99 }), [failing, fine]), [fine]);
    assert.deepEqual(filter.filter(ctx({}, { now: now + 100 }), [failing, fine]), [failing, fine], 'back after 100 ms');
    failing.recordAnswered(now + 100, 429);
    assert.deepEqual(filter.filter(ctx({}, { now: now + 299 }), [failing, fine]), [fine], '200 ms the second time');
    assert.deepEqual(filter.filter(ctx({}, { now: now + 150 }), [failing]), [failing], 'the only one left is still tried');
    failing.recordAnswered(now + 300, 200);
    assert.deepEqual(filter.filter(ctx({}, { now: now + 301 }), [failing, fine]), [failing, fine], 'a good answer ends it');
    const refused = endpoint(3, {}, now);
    refused.recordAnswered(now, 400);
    assert.equal(refused.resting(now + 1), false, "a 4xx is the client's doing");
  });

  test('a resting endpoint rests only while awake ones of the subset hint remain, wherever the subset filter runs', () => {
    const now = 10_000;
    const failing = endpoint(1, {}, now);
    const fine = endpoint(2, {}, now);
    failing.recordAnswered(now, 500);
    const pinned = ctx({ subset: new Set([failing.address]) }, { now });
    assert.deepEqual(filter.filter(pinned, [failing, fine]), [failing, fine], 'the subset filter keeps the resting one');
    assert.deepEqual(filter.filter(pinned, [failing]), [failing]);
    assert.deepEqual(filter.filter(ctx({ subset: new Set([failing.address, fine.address]) }, { now }), [failing, fine]), [fine]);
  });

  test('drops from the first position too', () => {
    const eps = [endpoint(1, {}, 10), endpoint(2, {}, 5000)];
    const kept = filter.filter(ctx({}, { now: 5000 }), eps);
    assert.equal(kept.length, 1);
    assert.equal(kept[0], eps[1]);
  });
});
