// A scraped https endpoint that shows a certificate for another host (a botched rotation) and then the right one again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certificates } from './helpers/certificates.js';

const source = fileURLToPath(new URL('../src/scheduler/metrics-source.ts', import.meta.url));

// In a child process: the CA has to be trusted through NODE_EXTRA_CA_CERTS, which Node reads only at start.
const scenario = (dir: string) => `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { HttpMetricsSource } from ${JSON.stringify(source)};
const tls = (name) => ({ cert: readFileSync(${JSON.stringify(dir)} + '/' + name + '.pem'), key: readFileSync(${JSON.stringify(dir)} + '/' + name + '.key') });
const server = createServer(tls('wrong'), (req, res) => res.end('vllm:num_requests_waiting 0\\n'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const source = new HttpMetricsSource(500);
const url = 'https://127.0.0.1:' + server.address().port;
const scrape = () => source.fetch(url).then(() => 'ok', (err) => err.code ?? err.message);
const seen = [await scrape(), await scrape()];
server.setSecureContext(tls('right'));
seen.push(await scrape());
console.log(JSON.stringify(seen));
process.exit(0);
`;

test('an endpoint that showed a certificate for another host is scraped again, and answers once the certificate is right', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-scrape-tls-'));
  try {
    // Two leaves the CA signs: one for 127.0.0.1, one for the host `other`.
    certificates(dir, { right: 'IP:127.0.0.1', wrong: 'DNS:other' });
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', scenario(dir)], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
      timeout: 20_000,
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(out), ['ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ok']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
