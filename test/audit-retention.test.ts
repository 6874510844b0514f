// GatewaySettings `audit.retention` in a running gateway: rows past it are deleted at start, and at once when a
// reload shortens it; without it the log is kept whole (as before the setting existed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { insertAuditRow } from '../src/store/audit-log.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const DAY = 86_400_000;

test('audit.retention deletes older rows at start and when a reload shortens it; without it nothing is deleted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-retention-'));
  const file = join(dir, 'config.yaml');
  const db = `sqlite:${join(dir, 't.db')}`;
  const settings = (retention?: string) =>
    `${poolAndModelYaml('http://127.0.0.1:9')}\n---\napiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: s }\nspec:\n  analytics: { enabled: false }\n${retention ? `  audit: { retention: ${retention} }\n` : ''}`;
  let gw: Gateway | undefined;
  t.after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const rows = async () => (await gw!.apim.db.kysely.selectFrom('audit_log').select('resource_name').orderBy('id').execute()).map((r) => r.resource_name);
  const write = (daysAgo: number) => insertAuditRow(gw!.apim.db.kysely, { at: new Date(Date.now() - daysAgo * DAY).toISOString(), actor: 'admin', action: 'update', resourceType: 'developer', resourceName: `${daysAgo}d` });

  writeFileSync(file, settings());
  gw = await startGateway({ configPaths: [file], db, ...LOOPBACK });
  for (const daysAgo of [40, 10, 0]) await write(daysAgo);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(await rows(), ['40d', '10d', '0d'], 'without a retention the log is kept whole');
  await gw.close();

  writeFileSync(file, settings('30d'));
  gw = await startGateway({ configPaths: [file], db, ...LOOPBACK });
  await waitFor(async () => (await rows())[0] !== '40d', 10_000, 'the row past 30 days deleted at start', 20);
  assert.deepEqual(await rows(), ['10d', '0d']);

  writeFileSync(file, settings('7d'));
  assert.equal(await gw.reload(), true);
  await waitFor(async () => (await rows())[0] !== '10d', 10_000, 'the row past 7 days deleted on the reload', 20);
  assert.deepEqual(await rows(), ['0d']);
});
