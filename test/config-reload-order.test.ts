// Reloads run one at a time and the newest change wins: an older reload held up (a slow host-name lookup, a slow
// store write) commits nothing once a newer one is asked for, and one still waiting at close() never applies. Before,
// the older one installed its API management policies over the newer ones (keys no longer checked) and a reload
// waiting at close() applied after the shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { LookupAll } from '../src/gateway/endpoint-addresses.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { sleep, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

/** API keys checked (`true`) or not, with a product named `product`. */
const apim = (keys: boolean, product = 'gold') =>
  [
    { kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { defaultSecurityEnabled: keys, targetRef: { name: 'tollgate' } } },
    { kind: 'APIProduct', metadata: { name: product }, spec: { displayName: product } },
  ]
    .map((d) => JSON.stringify({ apiVersion: 'apim.googleapis.com/v1', ...d }))
    .join('\n---\n');

/** A gateway on a directory of a pool (models.yaml) and API management (apim.yaml), keys checked; its log in `logs`. */
async function gatewayOnFiles(t: { after: (fn: () => Promise<void>) => void }, lookup?: LookupAll) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-order-'));
  const stub = await startStub();
  const logs: { msg?: string; time: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const files = {
    models: (endpoint = stub.url) => writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(endpoint)),
    apim: (keys: boolean, product?: string) => writeFileSync(join(dir, 'apim.yaml'), apim(keys, product)),
  };
  files.models();
  files.apim(true);
  const gw = await startGateway({ configPaths: [dir], ...LOOPBACK, logger, lookup });
  t.after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { gw, stub, files, logs };
}

/** The status of a request without a key. */
async function keyless(gw: Gateway): Promise<number> {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) });
  await r.body.dump();
  return r.statusCode;
}

/** A lookup that holds `slow.example` until `release()`; other names resolve to loopback at once. */
function heldLookup() {
  const asked: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const lookup: LookupAll = async (host) => {
    asked.push(host);
    if (host === 'slow.example') await released;
    return [{ address: '127.0.0.1', family: 4 }];
  };
  return { lookup, asked, release };
}

test('an older reload held up by a host-name lookup does not install its policies over a newer one', async (t) => {
  const held = heldLookup();
  const { gw, stub, files } = await gatewayOnFiles(t, held.lookup);
  t.after(held.release);
  assert.equal(await keyless(gw), 401);

  // A: keys off, and an endpoint whose host name is slow to look up.
  files.apim(false);
  files.models(`http://slow.example:${stub.port}`);
  const older = gw.reload();
  await waitFor(() => held.asked.includes('slow.example'), 5000, 'the lookup of the slow name');
  // B: the operator puts both back.
  files.apim(true);
  files.models();
  assert.equal(await gw.reload(), true);
  assert.equal(await older, false);
  held.release();
  await gw.apim.settled();
  assert.equal(await keyless(gw), 401, 'the files say keys are checked');
  assert.deepEqual(gw.config.pools.get('pool')!.endpoints.map((e) => e.url), [stub.url]);
});

test('an older reload held up in its store write installs nothing once a newer one is asked for; the newer one follows it', async (t) => {
  const { gw, files } = await gatewayOnFiles(t);
  const db = gw.apim.db;
  const transaction = db.transaction.bind(db);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let writes = 0;
  let holding = false;
  // The first write after this is held until the test releases it; the others go through.
  t.mock.method(db, 'transaction', async (fn: Parameters<typeof transaction>[0]) => {
    if (++writes === 1) {
      holding = true;
      await released;
    }
    return transaction(fn);
  });
  t.after(release);

  // A: keys off (and another product, so its objects go to the store).
  files.apim(false, 'silver');
  const older = gw.reload();
  await waitFor(() => holding, 5000, 'the older reload writing to the store');
  // B: keys on again.
  files.apim(true, 'silver');
  const newer = gw.reload();
  // Room for a reload running beside the held one to write and apply first (before, it did: then the older one
  // installed its policies over it).
  await sleep(300);
  release();
  assert.equal(await older, false);
  assert.equal(await newer, true);
  await gw.apim.settled();
  assert.equal(await keyless(gw), 401, 'the files say keys are checked');
  assert.equal(writes, 2, 'the newer reload wrote the files\' objects after the older one');
});

test('a reload still waiting when close() is called does not apply', async (t) => {
  const held = heldLookup();
  const { gw, stub, files, logs } = await gatewayOnFiles(t, held.lookup);
  t.after(held.release);
  files.models(`http://slow.example:${stub.port}`);
  const pending = gw.reload();
  await waitFor(() => held.asked.includes('slow.example'), 5000, 'the lookup of the slow name');
  await gw.close();
  const closedAt = Date.now();
  held.release();
  assert.equal(await pending, false);
  assert.equal(await gw.reload(), false, 'nothing reloads after close()');
  assert.deepEqual(gw.config.pools.get('pool')!.endpoints.map((e) => e.url), [stub.url]);
  assert.ok(!logs.some((l) => l.msg === 'configuration reloaded' && l.time >= closedAt), 'nothing applied after close()');
});
