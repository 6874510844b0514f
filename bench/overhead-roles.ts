// The processes of `tollgate bench overhead`, one per role: the upstream stub, the bare Node proxy (the floor),
// and tollgate itself. Each prints "READY <port>" once listening and stops on SIGTERM.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { serveUntilStopped } from './child.js';
import { chainManifests, seedKeys, type Chain } from './overhead-chains.js';

const ANSWER = JSON.stringify(chatAnswer('Hello! How can I help you today?', 'bench-model'));

/** A model server that answers at once: what is measured is the proxy, not the model. */
function stub(): void {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      // An idle vLLM server as the endpoint picker scrapes it: endpoints without metrics are never picked.
      res.end('vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc 0\n');
      return;
    }
    if (req.url === '/v1/traces') {
      // The OTLP sink of the observability scenario: spans are received and dropped.
      req.resume();
      req.on('end', () => res.end('{}'));
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => serveUntilStopped((server.address() as { port: number }).port, () => void server.close()));
}

/** The minimum a Node proxy does: node:http in, undici out, body piped both ways. */
function bareProxy(upstreamPort: number): void {
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 512 });
  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const up = await pool.request({ path: req.url!, method: req.method as 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
      res.writeHead(up.statusCode, up.headers as Record<string, string>);
      for await (const c of up.body) res.write(c);
      res.end();
    } catch {
      res.writeHead(502).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => serveUntilStopped((server.address() as { port: number }).port, () => void server.close()));
}

/** tollgate with one of the compared policy chains; prints the API keys the load should use, then READY. */
async function tollgate(upstreamPort: number, chain: Chain): Promise<void> {
  // A database file, as `tollgate serve` keeps by default (sqlite:./tollgate.db): usage records are stored by the
  // writer thread, as in production, not from the event loop as with an in-memory database.
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const manifests = chainManifests(chain, `http://127.0.0.1:${upstreamPort}`);
  const gw = await startGateway({ configPaths: [], manifests, port: 0, adminPort: 0, host: '127.0.0.1', watch: false, db: `sqlite:${join(dir, 'tollgate.db')}`, analyticsDir: join(dir, 'analytics') });
  if (chain !== 'none') process.stdout.write(`KEYS ${(await seedKeys(gw, 64)).join(',')}\n`);
  serveUntilStopped(gw.port, async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

const [role, port, chain] = process.argv.slice(2);
if (role === 'stub') stub();
else if (role === 'bare-proxy') bareProxy(Number(port));
else if (role === 'tollgate') await tollgate(Number(port), (chain ?? 'none') as Chain);
else throw new Error(`unknown role ${role}`);
