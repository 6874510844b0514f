// The gateway's own admin routes take no query parameter they do not read (a 400 naming it, as every admin route),
// and /v1/pools pages as the other lists do.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { PoolView } from '../scheduler/fleet-view.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { AdminRouter } from './admin-router.js';
import { registerHealthRoutes, registerPoolRoutes } from './status-routes.js';

// Declared out of name order: the list is ordered by name.
const pools = ['c', 'a', 'b'].map((name) => ({ name }) as PoolView);
const view = ((name?: string) => (name === undefined ? pools : pools.find((p) => p.name === name))) as Scheduler['view'];

let server: Server;
let base: string;
before(async () => {
  const router = new AdminRouter('s3cret');
  registerPoolRoutes(router, { picker: { view } });
  registerHealthRoutes(router, { readiness: () => ({ status: 503, body: { ready: false } }), registry: new Registry() });
  server = createServer(router.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function get(path: string, token = true): Promise<{ status: number; body: any }> {
  const r = await fetch(base + path, { headers: token ? { authorization: 'Bearer s3cret' } : {} });
  const text = await r.text();
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

test('every one of them refuses a query parameter it does not take, naming it', async () => {
  for (const path of ['/v1/pools?bogus=1', '/v1/pools/a?dryRun=true', '/healthz?bogus=1', '/readyz?bogus=1', '/metrics?bogus=1']) {
    const r = await get(path);
    assert.equal(r.status, 400, path);
    assert.equal(r.body.error.code, 'invalid', path);
    assert.equal(r.body.error.details[0].path, new URL(path, base).searchParams.keys().next().value, path);
  }
  const r = await get('/v1/pools?pageSize=0');
  assert.equal(r.status, 400);
  assert.equal(r.body.error.details[0].path, 'pageSize');
});

test('without query parameters they answer as before; health, readiness and metrics need no token', async () => {
  assert.equal((await get('/healthz', false)).status, 200);
  assert.equal((await get('/readyz', false)).status, 503);
  assert.equal((await get('/metrics', false)).status, 200);
  assert.equal((await get('/v1/pools', false)).status, 401);
  assert.deepEqual((await get('/v1/pools/b')).body, { name: 'b' });
  assert.equal((await get('/v1/pools/z')).status, 404);
});

test('/v1/pools is paginated with ?pageSize=&pageToken=, by pool name', async () => {
  const all = await get('/v1/pools');
  assert.deepEqual(all.body, { items: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] });
  const names: string[] = [];
  let token: string | undefined;
  do {
    const r = await get(`/v1/pools?pageSize=2${token ? `&pageToken=${token}` : ''}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.items.length <= 2);
    names.push(...r.body.items.map((p: PoolView) => p.name));
    token = r.body.nextPageToken;
  } while (token);
  assert.deepEqual(names, ['a', 'b', 'c']);
  const bad = await get('/v1/pools?pageToken=nonsense');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.details[0].path, 'pageToken');
});
