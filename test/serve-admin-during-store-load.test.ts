// `tollgate serve` with a store that is slow to load: the admin port answers health, readiness and metrics from the
// start, while the data plane stays closed until the store has loaded. The store is held deterministically: the test
// holds the PostgreSQL migration lock (as a replica migrating beside it would), which the start waits for as long as
// it is held.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { LOCK_CLASS } from '../src/store/migrate.js';
import { randomBase62 } from '../src/store/keys.js';
import { waitFor } from '../src/sim/testing.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { freePorts, kill, runCli, send, START_MS, statusOf, tempDir, untilPrinted, type Outcome } from './helpers/cli-run.js';

const DATABASE_URL = process.env.DATABASE_URL;

// A database of its own (serve works in its `public` schema), dropped after the test.
const database = `tg_start_${randomBase62(10).toLowerCase()}`;
let admin: pg.Client;
let holder: pg.Client;
let stub: Stub;

before(async () => {
  if (!DATABASE_URL) return;
  admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${database}`);
  holder = new pg.Client({ connectionString: urlOf(database) });
  await holder.connect();
  stub = await startStub();
});

after(async () => {
  if (!DATABASE_URL) return;
  await holder.end();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
  await stub.close();
});

function urlOf(name: string): string {
  const url = new URL(DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.href;
}

const bodyOf = (o: Outcome) => ('status' in o ? JSON.parse(o.body) : o);

test('while the store loads: /healthz 200, /readyz 503 naming the store, /metrics, admin API 503 starting, data plane closed; then ready', { skip: DATABASE_URL ? false : 'DATABASE_URL not set' }, async () => {
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml(stub.url));
  const [port, adminPort] = await freePorts(2);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await holder.query('select pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, 'public']);
  const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', urlOf(database)], dir);
  try {
    // Logged once the start has waited for the lock for a while: the store is being opened, and stays so until released.
    await untilPrinted(cli, /waiting for the migration lock/, 'serve waiting for the store');

    assert.equal(statusOf(await send(`${adminUrl}/healthz`)), 200);
    const loading = await send(`${adminUrl}/readyz`);
    assert.equal(statusOf(loading), 503);
    assert.deepEqual(bodyOf(loading), { ready: false, listening: false, configLoaded: true, policiesBuilt: false, poolsNotReady: ['pool'], lastReload: null, loading: ['store'] });
    const metrics = await send(`${adminUrl}/metrics`);
    assert.equal(statusOf(metrics), 200);
    assert.match('body' in metrics ? metrics.body : '', /^process_resident_memory_bytes /m);
    // The admin API, in its documented error shape; a route of the gateway's own (pools) is not there yet either.
    for (const path of ['/v1/apiproducts', '/v1/pools']) {
      const refused = await send(`${adminUrl}${path}`);
      assert.equal(statusOf(refused), 503, path);
      assert.equal(bodyOf(refused).error.code, 'starting', path);
    }
    assert.equal(statusOf(await send(`http://127.0.0.1:${port}/v1/models`)), 'ECONNREFUSED');

    await holder.query('select pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, 'public']);
    await untilPrinted(cli, /tollgate is serving/, 'serve');
    assert.equal(statusOf(await send(`http://127.0.0.1:${port}/v1/models`)), 200);
    assert.equal(statusOf(await send(`${adminUrl}/v1/apiproducts`)), 200);
    // Ready once the pool's endpoint has been scraped.
    await waitFor(async () => statusOf(await send(`${adminUrl}/readyz`)) === 200, START_MS, '/readyz 200', 50);
    assert.deepEqual(bodyOf(await send(`${adminUrl}/readyz`)).loading, []);
  } finally {
    await kill(cli.child);
    await holder.query('select pg_advisory_unlock_all()');
  }
});
