// A template rule added to the --config files over templates the admin API applied before that break it: the same rule
// applied through the admin API reports them and serving goes on, but from the files it dropped the reload (only
// logged) and, after a restart, refused every request (500 extension_failed, /readyz blaming the store). It is now
// reported the same way (a warning naming the templates and the rule); a rule the files' own templates break stays a
// configuration error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../src/config/manifest.js';
import type { Gateway } from '../src/gateway/gateway.js';
import { call } from './helpers/apim-admin.js';
import { configDir, startOnDir, writeApim } from './helpers/config-dir.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';

type Log = { msg?: string; violations?: string[]; problems?: string[] };
const doc = (kind: string, name: string, spec: unknown) => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec });
const extension = doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } });
const noSpikeArrest = doc('ApimTemplateRule', 'org', { denyList: [{ kind: 'SpikeArrest' }] });
const spikeArrestTemplate = [
  doc('SpikeArrest', 'sa', { rate: '1000ps' }),
  doc('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'sa' }] }] }),
];
const VIOLATION = 'ApimTemplate/t breaks ApimTemplateRule/org: SpikeArrest is on the denyList';

let stub: Stub;
before(async () => {
  stub = await startStub();
});
after(() => stub.close());




async function chat(gw: Gateway): Promise<number> {
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  await r.arrayBuffer();
  return r.status;
}

const warned = (logs: Log[]) => logs.some((l) => l.violations?.includes(VIOLATION));

test('a restart whose files add a rule the applied templates break serves on and warns, naming them and the rule', async () => {
  const dir = configDir(stub.url, [extension]);
  const first = await startOnDir(dir);
  assert.equal((await call(first.adminUrl, 'POST', '/v1/apply', spikeArrestTemplate)).status, 200);
  await first.close();

  writeApim(dir, [extension, noSpikeArrest]);
  const logs: Log[] = [];
  const gw = await startOnDir(dir, logs);
  try {
    assert.equal(await chat(gw), 200);
    const ready = await call(gw.adminUrl, 'GET', '/readyz');
    assert.deepEqual([ready.status, ready.body.policiesBuilt], [200, true]);
    assert.ok(warned(logs), JSON.stringify(logs.filter((l) => l.violations)));
    // Applying the template again is refused, as under a rule the admin API applied.
    const again = await call(gw.adminUrl, 'POST', '/v1/apply', spikeArrestTemplate.slice(1));
    assert.equal(again.status, 400, JSON.stringify(again.body));
    assert.match(JSON.stringify(again.body), /ApimTemplate\/t breaks ApimTemplateRule\/org/);
    // ...while other applies go on.
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', [doc('SpikeArrest', 'other', { rate: '10ps' })])).status, 200);
  } finally {
    await gw.close();
  }
});

test('a reload that adds such a rule applies, and warns the same way', async () => {
  const dir = configDir(stub.url, [extension]);
  const logs: Log[] = [];
  const gw = await startOnDir(dir, logs);
  try {
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', spikeArrestTemplate)).status, 200);
    writeApim(dir, [extension, noSpikeArrest]);
    assert.equal(await gw.reload(), true, JSON.stringify(logs.filter((l) => l.problems)));
    assert.ok(warned(logs));
    assert.equal(await chat(gw), 200);
  } finally {
    await gw.close();
  }
});

test("a rule the files' own templates break is still a configuration error: the start fails, a reload is refused", async () => {
  const dir = configDir(stub.url, [extension, noSpikeArrest, ...spikeArrestTemplate]);
  await assert.rejects(startOnDir(dir), (err) => err instanceof ConfigError && err.problems.some((p) => p.includes(VIOLATION)));

  writeApim(dir, [extension]);
  const logs: Log[] = [];
  const gw = await startOnDir(dir, logs);
  try {
    writeApim(dir, [extension, noSpikeArrest, ...spikeArrestTemplate]);
    assert.equal(await gw.reload(), false);
    assert.ok(logs.some((l) => l.msg?.includes('configuration change rejected') && l.problems?.some((p) => p.includes(VIOLATION))));
  } finally {
    await gw.close();
  }
});
