// The processes of `tollgate bench overhead`, one per role: the upstream stub, the bare Node proxy (the floor),
// and tollgate itself. Each prints "READY <port>" once listening and stops on SIGTERM.
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { validateDocument } from '../src/config/manifest.js';

const ANSWER = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1700000000,
  model: 'bench-model',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
});

function ready(port: number): void {
  process.stdout.write(`READY ${port}\n`);
}

function onTerm(close: () => Promise<unknown> | void): void {
  process.once('SIGTERM', async () => {
    await close();
    process.exit(0);
  });
}

/** A model server that answers at once: what is measured is the proxy, not the model. */
function stub(): void {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  onTerm(() => void server.close());
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
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  onTerm(() => void server.close());
}

function manifest(raw: unknown): Manifest {
  const r = validateDocument(raw, 'bench', 0);
  if (!r.manifest) throw new Error(r.problems.join('\n'));
  return r.manifest;
}

async function tollgate(upstreamPort: number): Promise<void> {
  const manifests = [
    manifest({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'GatewaySettings', metadata: { name: 'bench' }, spec: { logging: { accessLog: false } } }),
    manifest({ apiVersion: 'inference.networking.k8s.io/v1', kind: 'InferencePool', metadata: { name: 'bench' }, spec: { endpoints: [`http://127.0.0.1:${upstreamPort}`] } }),
    manifest({ apiVersion: 'inference.networking.x-k8s.io/v1alpha2', kind: 'InferenceModel', metadata: { name: 'bench' }, spec: { modelName: 'bench-model', poolRef: { name: 'bench' } } }),
  ];
  const gw = await startGateway({ configPaths: [], manifests, port: 0, adminPort: 0, host: '127.0.0.1', watch: false });
  ready(gw.port);
  onTerm(() => gw.close());
}

const [role, port] = process.argv.slice(2);
if (role === 'stub') stub();
else if (role === 'bare-proxy') bareProxy(Number(port));
else if (role === 'tollgate') await tollgate(Number(port));
else throw new Error(`unknown role ${role}`);
