// `tollgate copy-store`: a gateway that outgrows its SQLite file moves to PostgreSQL with every key still working —
// the store holds only their hashes, which no API shows — and products, apps, key-value maps, the audit log and
// usage records along with them; a store that already holds rows is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { copyStoreCommand } from '../src/cli/copy-store.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { waitFor } from '../src/sim/testing.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, createApp, type IssuedApp } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { apiKeyManifests, manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';

const postgres = DATABASE_BACKENDS[1];

describe('copy-store from SQLite to PostgreSQL', { skip: postgres.skip }, () => {
  let stub: Stub;
  let dir: string;
  let target: TestDatabase;
  let gw: Gateway | undefined;
  let issued: IssuedApp;
  let sqliteUrl: string;
  let pgUrl: string;

  const start = async (db: string, analytics: string) => {
    await gw?.close();
    const manifests = [...poolAndModel([stub.url]), manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } })];
    gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger: silentLogger, db, analyticsDir: join(dir, analytics) });
    return gw;
  };
  const chat = async (key: string) => {
    const r = await fetch(`${gw!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
    await r.arrayBuffer();
    return r.status;
  };
  const copy = async (from: string, to: string) => {
    const out: string[] = [];
    const command = copyStoreCommand({ out: (l) => out.push(l), err: () => {}, env: {} }).exitOverride();
    let exitCode = 0;
    try {
      await command.parseAsync(['--from', from, '--to', to], { from: 'user' });
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      exitCode = e.exitCode;
    }
    return { out, exitCode };
  };
  const usageRecords = async () => (await call(gw!.adminUrl, 'GET', `/v1/analytics/stats?from=${new Date(Date.now() - 3_600_000).toISOString()}&bucket=1d`)).body.rows.reduce((n: number, r: { requests: number }) => n + r.requests, 0);

  before(async () => {
    stub = await startStub();
    dir = mkdtempSync(join(tmpdir(), 'tollgate-copy-store-'));
    sqliteUrl = `sqlite:${join(dir, 'tollgate.db')}`;
    target = await postgres.create();
    pgUrl = `${target.url}${target.url.includes('?') ? '&' : '?'}schema=${target.schema}`;
    // A product the admin API made (in the store alone, not in the files), an app and key, a key-value map entry.
    await start(sqliteUrl, 'analytics-a');
    const applied = await call(gw!.adminUrl, 'POST', '/v1/apply', [
      { apiVersion: 'apim.googleapis.com/v1', kind: 'APIProduct', metadata: { name: 'gold' }, spec: { displayName: 'Gold', approvalType: 'auto' } },
      { apiVersion: 'apim.googleapis.com/v1', kind: 'APIOperationSet', metadata: { name: 'gold-ops' }, spec: { apiProductRefs: [{ name: 'gold' }] } },
    ]);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    issued = await createApp(gw!.adminUrl, ['gold']);
    assert.equal((await call(gw!.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'tiers' })).status, 201);
    assert.equal((await call(gw!.adminUrl, 'PUT', `/v1/keyvaluemaps/tiers/entries/${issued.appId}`, { value: 'premium' })).status, 200);
    assert.equal(await chat(issued.key), 200);
    assert.equal(await chat('not-a-key'), 401);
    await waitFor(async () => (await usageRecords()) === 2, 10_000, 'both usage records stored', 50);
    await gw!.close();
    gw = undefined;
  });

  after(async () => {
    await gw?.close();
    await stub?.close();
    await target?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the key, its app and product, the map entry, the audit log and the usage records come along', async () => {
    const { out, exitCode } = await copy(sqliteUrl, pgUrl);
    assert.equal(exitCode, 0, out.join('\n'));
    assert.ok(out.includes('credentials: 1 row'), out.join('\n'));
    assert.ok(out.includes('analytics_records: 2 rows'), out.join('\n'));
    assert.match(out.at(-1)!, /^copied \d+ rows from sqlite:.* to postgres:/);

    await start(pgUrl, 'analytics-b');
    // Before: no way to move a key (the store holds its hash only), so every consumer needed a new one.
    assert.equal(await chat(issued.key), 200);
    assert.equal((await call(gw!.adminUrl, 'GET', `/v1/keyvaluemaps/tiers/entries/${issued.appId}`)).body.value, 'premium');
    assert.equal((await call(gw!.adminUrl, 'GET', '/v1/apiproducts/gold')).status, 200);
    const audit = await call(gw!.adminUrl, 'GET', '/v1/audit?pageSize=1000');
    assert.ok(audit.body.items.length >= 4, 'the audit rows came along');
    // New rows take ids after the copied ones (PostgreSQL's sequence set past them), not a duplicate key.
    const more = await createApp(gw!.adminUrl, ['gold'], 'after-copy');
    assert.equal(await chat(more.key), 200);
    await waitFor(async () => (await usageRecords()) === 4, 10_000, 'the copied records and the new ones', 50);
  });

  test('and back: PostgreSQL into a new SQLite file (jsonb, timestamptz and bigint read as SQLite stores them)', async () => {
    await gw?.close();
    gw = undefined;
    const back = `sqlite:${join(dir, 'back.db')}`;
    const { out, exitCode } = await copy(pgUrl, back);
    assert.equal(exitCode, 0, out.join('\n'));
    await start(back, 'analytics-c');
    assert.equal(await chat(issued.key), 200);
    const app = await call(gw!.adminUrl, 'GET', `/v1/developers/${encodeURIComponent(issued.email)}/apps/${issued.app}`);
    assert.equal(app.status, 200);
    assert.deepEqual(app.body.credentials[0].apiProducts.map((p: { apiproduct: string }) => p.apiproduct), ['gold']);
    // A timestamp PostgreSQL gave as a Date, stored as SQLite's ISO text, read back as the time it was.
    assert.ok(Math.abs(app.body.createdAt - Date.now()) < 600_000, String(app.body.createdAt));
  });

  test('a store that already holds rows is refused, with exit code 2; so is the same store twice', async () => {
    const again = await copy(sqliteUrl, pgUrl);
    assert.equal(again.exitCode, 2);
    assert.equal((await copy(sqliteUrl, sqliteUrl)).exitCode, 2);
    assert.equal((await copy('mysql://x', pgUrl)).exitCode, 2);
    // A source file that is not there is not made, empty, and "copied".
    const missing = join(dir, 'no-such.db');
    assert.equal((await copy(`sqlite:${missing}`, `sqlite:${join(dir, 'other.db')}`)).exitCode, 2);
    assert.equal(existsSync(missing), false);
  });
});

test('copy-store between two SQLite files (no PostgreSQL needed): the key and its app come along; the target must be empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-copy-sqlite-'));
  const stub = await startStub();
  let gw: Gateway | undefined;
  const start = async (file: string, analytics: string) => {
    await gw?.close();
    gw = await startGateway({ configPaths: [], manifests: [...poolAndModel([stub.url]), ...apiKeyManifests('gold')], ...LOOPBACK, logger: silentLogger, db: `sqlite:${join(dir, file)}`, analyticsDir: join(dir, analytics) });
    return gw;
  };
  try {
    await start('a.db', 'analytics-a');
    const issued = await createApp(gw!.adminUrl, ['gold']);
    await gw!.close();
    gw = undefined;
    const out: string[] = [];
    const run = (to: string) => copyStoreCommand({ out: (l) => out.push(l), err: () => {}, env: {} }).exitOverride().parseAsync(['--from', `sqlite:${join(dir, 'a.db')}`, '--to', to], { from: 'user' });
    await run(`sqlite:${join(dir, 'b.db')}`);
    assert.ok(out.includes('credentials: 1 row'), out.join('\n'));
    await start('b.db', 'analytics-b');
    const r = await fetch(`${gw!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': issued.key }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
    await r.arrayBuffer();
    assert.equal(r.status, 200);
    await gw!.close();
    gw = undefined;
    await assert.rejects(run(`sqlite:${join(dir, 'b.db')}`), (e: CommanderError) => e.exitCode === 2);
  } finally {
    await gw?.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
