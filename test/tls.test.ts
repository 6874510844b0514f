// HTTPS on both sides: the gateway's listener with --tls-cert/--tls-key, and an https model-server endpoint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('HTTPS listener in front of an HTTPS endpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const upstream = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    if (req.url === '/metrics') return void res.end('vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc 0\n');
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ secure: true }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `https://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  // The test's certificate is self-signed, so the gateway is told not to verify it.
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([upstreamUrl]), settings({ upstream: { tlsRejectUnauthorized: false } })],
    ...LOOPBACK,
    tls: { cert, key },
  });
  const client = new Agent({ connect: { ca: readFileSync(cert) } });
  after(async () => {
    await gw.close();
    upstream.close();
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.match(gw.url, /^https:/);
  const r = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: client,
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(await r.body.json(), { secure: true });
});
