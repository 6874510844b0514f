// A reload that brings an endpoint host name waits for its lookup before it applies (ext_proc gives Envoy ip:port):
// a later reload that applies meanwhile is not undone when the earlier one's lookup ends.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../src/gateway/gateway.js';
import type { LookupAll } from '../src/gateway/endpoint-addresses.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a reload waiting on a host-name lookup does not apply over a later one that applied meanwhile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-lookup-'));
  const stub = await startStub();
  const asked: string[] = [];
  let answer!: () => void;
  const lookup: LookupAll = (host) => {
    asked.push(host);
    return new Promise((resolve) => (answer = () => resolve([{ address: '127.0.0.1', family: 4 }])));
  };
  const write = (model: string, endpoint = stub.url) => writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(endpoint, model));
  write('first');
  const gw = await startGateway({ configPaths: [dir], ...LOOPBACK, lookup });
  after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  write('older', `http://model-server:${stub.port}`);
  const older = gw.reload();
  await waitFor(() => asked.length === 1, 5000, 'the lookup of the new host name');
  write('newer');
  assert.equal(await gw.reload(), true);
  answer();
  // Before: the older files applied last, over the newer ones.
  assert.equal(await older, false);
  assert.deepEqual([...gw.config.models.keys()], ['newer']);
});
