// What became of a reload is visible outside the log: tollgate_config_reloads_total{outcome}, the time of the last
// load that applied, and /readyz's lastReload (with the problems of a rejected one). A rejected reload leaves the
// gateway ready: the last good configuration serves. Before, /metrics and /readyz said nothing of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('reload outcomes on /metrics and /readyz', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-outcomes-'));
  const stub = await startStub();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, poolAndModelYaml(stub.url));
  const startedAt = Date.now() / 1000;
  const gw = await startGateway({ configPaths: [file], ...LOOPBACK });
  t.after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const readyz = async () => {
    const r = await request(`${gw.adminUrl}/readyz`);
    return { status: r.statusCode, body: (await r.body.json()) as { ready: boolean; lastReload: { outcome: string; at: string; problems?: string[] } | null } };
  };
  const metrics = async () => {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    return {
      applied: value('tollgate_config_reloads_total{outcome="applied"}'),
      rejected: value('tollgate_config_reloads_total{outcome="rejected"}'),
      lastApplied: value('tollgate_config_last_reload_success_timestamp_seconds'),
    };
  };

  await waitFor(async () => (await readyz()).status === 200, 10_000, 'ready', 20);
  assert.equal((await readyz()).body.lastReload, null);
  const atStart = await metrics();
  assert.equal(atStart.applied, 0);
  assert.equal(atStart.rejected, 0);
  assert.ok(atStart.lastApplied >= Math.floor(startedAt), 'the start counts as a load that applied');

  writeFileSync(file, poolAndModelYaml(stub.url).replace('modelName', 'modelNme'));
  assert.equal(await gw.reload(), false);
  const rejected = await readyz();
  assert.equal(rejected.status, 200, 'still ready: the last good configuration serves');
  assert.equal(rejected.body.lastReload?.outcome, 'rejected');
  assert.match(rejected.body.lastReload!.problems![0], /config\.yaml document 1 \(InferenceModel\/m\): spec/);
  assert.deepEqual(await metrics(), { ...atStart, rejected: 1 });

  writeFileSync(file, poolAndModelYaml(stub.url, 'm2'));
  assert.equal(await gw.reload(), true);
  const applied = await readyz();
  assert.equal(applied.body.lastReload?.outcome, 'applied');
  assert.equal(applied.body.lastReload?.problems, undefined);
  const after = await metrics();
  assert.equal(after.applied, 1);
  assert.equal(after.rejected, 1);
  assert.equal(after.lastApplied, Date.parse(applied.body.lastReload!.at) / 1000);
  assert.ok(after.lastApplied >= atStart.lastApplied);
});
