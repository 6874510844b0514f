// The access-token cache on its default clocks: the trust in a lookup and the hourly sweep go by the monotonic clock,
// so a wall clock stepped back (NTP, a VM resumed) neither keeps a revoked token working nor postpones the sweep.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessTokenGrant } from './access-token-source.js';
import { CachedAccessTokens, type AccessTokenBackend } from './access-token-cache.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
const HOUR = 3_600_000;

/** Both clocks under the test's hand: `wall` for Date.now(), `mono` for performance.now(). */
function clocks(t: TestContext) {
  const c = { wall: NOW, mono: 1000 };
  t.mock.method(Date, 'now', () => c.wall);
  t.mock.method(performance, 'now', () => c.mono);
  return c;
}

function table() {
  const rows = new Map<string, AccessTokenGrant>();
  const calls = { lookups: 0, sweeps: [] as number[] };
  const backend: AccessTokenBackend = {
    insert: async (t) => void rows.set(t.tokenHash, t),
    find: async (hash) => (calls.lookups++, rows.get(hash)),
    deleteLongExpired: async (keepMs) => (calls.sweeps.push(keepMs), 0),
  };
  return { rows, calls, backend };
}

const token = (tokenHash: string) => ({ tokenHash, keyId: 'key', keyHash: 'k', scopes: [], issuedAt: NOW, expiresAt: NOW + HOUR });

test('a lookup is trusted for the TTL of the monotonic clock, however far the wall clock steps back', async (t) => {
  const clock = clocks(t);
  const { rows, calls, backend } = table();
  const cache = new CachedAccessTokens(backend);
  rows.set('h', token('h'));
  assert.ok(await cache.find('h'));
  // Revoked on another replica, then this host's clock is stepped back an hour.
  rows.delete('h');
  clock.wall -= HOUR;
  clock.mono += 1001;
  assert.equal(await cache.find('h'), undefined);
  assert.equal(calls.lookups, 2);
});

test('the sweep of long-expired rows comes once an hour of the monotonic clock, asking for the kept day', async (t) => {
  const clock = clocks(t);
  const { calls, backend } = table();
  const cache = new CachedAccessTokens(backend);
  await cache.save(token('a'));
  assert.deepEqual(calls.sweeps, [86_400_000]);
  // A wall clock stepped two hours ahead and back again neither hurries the next sweep nor puts it off.
  clock.wall += 2 * HOUR;
  await cache.save(token('b'));
  assert.equal(calls.sweeps.length, 1);
  clock.wall -= 2 * HOUR;
  clock.mono += HOUR;
  await cache.save(token('c'));
  assert.equal(calls.sweeps.length, 2);
});
