// A gateway SIGKILLed under load: every answer a client received has its usage record after the restart, exactly
// once. The data plane sends an answer's last bytes only after its record is in the kernel (group commit).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { openDatabase } from '../src/store/open-database.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { startGatewayChild, stopGatewayChild, type GatewayChild } from './helpers/gateway-child.js';
import type { GatewayProcessArgs } from './helpers/gateway-process.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';

let dir: string;
let stub: Stub;
const children: GatewayChild[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-kill-'));
  stub = await startStub();
});
after(async () => {
  for (const c of children) await stopGatewayChild(c.child);
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

function args(): GatewayProcessArgs {
  return {
    manifests: [
      ['GatewaySettings', 'settings', { analytics: { flushInterval: '50ms' } }],
      ['InferencePool', 'pool', { endpoints: [stub.url] }],
      ['InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }],
    ],
    db: `sqlite:${join(dir, 'tollgate.db')}`,
    analyticsDir: join(dir, 'spool'),
  };
}

test('SIGKILL under load: every answer received has exactly one usage record after the restart', { timeout: 120_000 }, async () => {
  const first = await startGatewayChild('first', args());
  children.push(first);
  const received: string[] = [];
  let stop = false;
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
  async function client(n: number): Promise<void> {
    for (let i = 0; !stop; i++) {
      const id = `kill-${n}-${i}`;
      try {
        const r = await request(`${first.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body });
        const text = await r.body.text();
        if (r.statusCode === 200 && !stop) received.push(id);
        else if (r.statusCode !== 200) assert.fail(`answered ${r.statusCode}: ${text}`);
      } catch {
        return; // the gateway is gone
      }
    }
  }
  const clients = Array.from({ length: 16 }, (_, n) => client(n));
  while (received.length < 400) await new Promise((r) => setTimeout(r, 5));
  const exited = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  const answered = [...received];
  stop = true;
  await exited;
  await Promise.all(clients);

  // The restart replays the spool. Waiting for the records (rather than for a graceful stop, whose last flush is
  // bounded in time) keeps a slow, shared machine from failing the test.
  const second = await startGatewayChild('second', args());
  children.push(second);
  const db = await openDatabase(`sqlite:${join(dir, 'tollgate.db')}`, { listen: false });
  try {
    const stored = async () => {
      const rows = await new AnalyticsRecords(db).kysely.selectFrom('analytics_records').select(['id', 'request_id']).where('request_id', 'like', 'kill-%').execute();
      const byRequest = new Map<string, number>();
      for (const r of rows) byRequest.set(r.request_id, (byRequest.get(r.request_id) ?? 0) + 1);
      return { rows, byRequest, missing: answered.filter((id) => !byRequest.has(id)) };
    };
    for (let deadline = Date.now() + 60_000; (await stored()).missing.length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    await stopGatewayChild(second.child);
    const { rows, byRequest, missing } = await stored();
    assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered requests have no record`);
    const duplicated = [...byRequest].filter(([, n]) => n > 1);
    assert.deepEqual(duplicated, [], 'no request is recorded twice');
    assert.equal(new Set(rows.map((r) => r.id)).size, rows.length);
  } finally {
    await db.close();
  }
});
