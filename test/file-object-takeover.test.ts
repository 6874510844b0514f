// An object the admin API stored and the --config files later declare under the same kind and name is the files':
// the stored copy used to be enforced in place of the file's (it was built after it), and the admin API could neither
// change nor delete it (409 file_owned), so the operator's definition never ran. The files now take it over, with a
// warning naming it, at a start and at a reload alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Gateway } from '../src/gateway/gateway.js';
import { call } from './helpers/apim-admin.js';
import { configDir, startOnDir, writeApim } from './helpers/config-dir.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';

type Log = { msg?: string; object?: string };
const doc = (kind: string, name: string, spec: unknown) => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec });
const extension = doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } });
const spikeArrest = (rate: string) => doc('SpikeArrest', 'sa', { rate });
const template = doc('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'sa' }] }] });
const TAKEN_OVER = 'an object created through the admin API is now declared in --config files: the file replaces it (and the admin API can no longer change it)';

let stub: Stub;
before(async () => {
  stub = await startStub();
});
after(() => stub.close());




async function chats(gw: Gateway, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
    await r.arrayBuffer();
    out.push(r.status);
  }
  return out;
}

/** What the files declare is enforced, and the admin API shows no copy of its own nor can it make one. */
async function assertFilesOwn(gw: Gateway): Promise<void> {
  assert.deepEqual(await chats(gw, 3), [200, 429, 429], "the file's SpikeArrest (1 a minute) is enforced, not the stored one (1000 a second)");
  const shown = await call(gw.adminUrl, 'GET', '/v1/manifests/SpikeArrest/sa');
  assert.equal(shown.status, 404, `no stale copy shown: ${JSON.stringify(shown.body)}`);
  assert.deepEqual((await call(gw.adminUrl, 'GET', '/v1/manifests/SpikeArrest')).body.items, []);
  const changed = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('2000ps')]);
  assert.deepEqual([changed.status, changed.body.error?.code], [409, 'file_owned']);
  assert.equal((await call(gw.adminUrl, 'GET', '/v1/manifests/SpikeArrest/sa')).status, 404, 'nothing was stored');
}

test('at a start: the stored copy of an object the files now declare is replaced by the file’s, with a warning naming it', async () => {
  const dir = configDir(stub.url, [extension]);
  const first = await startOnDir(dir);
  const applied = await call(first.adminUrl, 'POST', '/v1/apply', [spikeArrest('1000ps'), template]);
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.deepEqual(await chats(first, 3), [200, 200, 200]);
  await first.close();

  // The template as well: two templates of one name, each listing SpikeArrest/sa, would list it twice.
  writeApim(dir, [extension, spikeArrest('1pm'), template]);
  const logs: Log[] = [];
  const gw = await startOnDir(dir, logs);
  try {
    assert.deepEqual(logs.filter((l) => l.msg === TAKEN_OVER).map((l) => l.object).sort(), ['ApimTemplate/t', 'SpikeArrest/sa']);
    await assertFilesOwn(gw);
  } finally {
    await gw.close();
  }
});

test('at a reload: the same, and the files’ object stays theirs once taken over', async () => {
  const dir = configDir(stub.url, [extension]);
  const logs: Log[] = [];
  const gw = await startOnDir(dir, logs);
  try {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('1000ps'), template]);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    writeApim(dir, [extension, spikeArrest('1pm')]);
    assert.equal(await gw.reload(), true, 'the reload applies');
    assert.deepEqual(logs.filter((l) => l.msg === TAKEN_OVER).map((l) => l.object), ['SpikeArrest/sa']);
    await assertFilesOwn(gw);
    // The template the admin API applied, naming the files' policy now, is still its own to delete.
    const deleted = await call(gw.adminUrl, 'DELETE', '/v1/manifests/ApimTemplate/t');
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  } finally {
    await gw.close();
  }
});
