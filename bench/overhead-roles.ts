// The processes of `tollgate bench overhead`, one per role: the upstream stub, the bare Node proxy (the floor),
// tollgate itself, and nginx (under a Node process that stops it). Each prints "READY <port>" once listening and
// stops on SIGTERM or when the benchmark is gone (bench/child.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';
import { freePort } from '../src/lib/ports.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { serveUntilStopped } from './child.js';
import { chainManifests, seedKeys, type Chain } from './overhead-chains.js';
import { stopProcess } from './processes.js';

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

/**
 * tollgate with one of the compared policy chains (its counters in `redis` when given, under a key prefix of its
 * own, deleted when it stops); prints the API keys the load should use, then READY.
 */
async function tollgate(upstreamPort: number, chain: Chain, redis?: string): Promise<void> {
  // A database file, as `tollgate serve` keeps by default (sqlite:./tollgate.db): usage records are stored by the
  // writer thread, as in production, not from the event loop as with an in-memory database.
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const manifests = chainManifests(chain, `http://127.0.0.1:${upstreamPort}`);
  const redisKeyPrefix = `tollgate-bench-${process.pid}-${Date.now()}:`;
  const gw = await startGateway({ configPaths: [], manifests, port: 0, adminPort: 0, host: '127.0.0.1', watch: false, db: `sqlite:${join(dir, 'tollgate.db')}`, analyticsDir: join(dir, 'analytics'), ...(redis !== undefined && { redis, redisKeyPrefix }) });
  if (chain !== 'none') process.stdout.write(`KEYS ${(await seedKeys(gw, 64)).join(',')}\n`);
  serveUntilStopped(gw.port, async () => {
    await gw.close();
    if (redis !== undefined) await deleteKeysAt(redis, redisKeyPrefix);
    rmSync(dir, { recursive: true, force: true });
  });
}


/**
 * nginx proxy_pass before the stub, as a child of this process, which stops it (and removes its directory) when the
 * benchmark is gone or signals: nginx in the foreground watches for neither, so alone it outlived a killed benchmark
 * with its port bound, and took a closed terminal's SIGHUP for "reload the configuration".
 */
async function nginx(upstreamPort: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-nginx-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  upstream model { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
  );
  // stdout is this process's READY line: nginx's own output stays out of it.
  const proc = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = async () => {
    await stopProcess(proc);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await untilAnswering(port, proc, 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  serveUntilStopped(port, stop);
}

/** nginx prints nothing when ready: it is once its port takes a connection. Fails if it exits first or takes longer than `withinMs`. */
async function untilAnswering(port: number, proc: ChildProcess, withinMs: number): Promise<void> {
  const connects = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  const deadline = performance.now() + withinMs;
  while (proc.exitCode === null && proc.signalCode === null) {
    if (await connects()) return;
    if (performance.now() > deadline) throw new Error(`nginx did not listen on ${port} within ${withinMs} ms`);
    await sleep(50);
  }
  throw new Error(`nginx exited (${proc.exitCode ?? proc.signalCode}) before it listened on ${port}`);
}

const [role, port, chain, redisUrl] = process.argv.slice(2);
if (role === 'stub') stub();
else if (role === 'bare-proxy') bareProxy(Number(port));
else if (role === 'nginx') await nginx(Number(port));
else if (role === 'tollgate') await tollgate(Number(port), (chain ?? 'none') as Chain, redisUrl);
else throw new Error(`unknown role ${role}`);
