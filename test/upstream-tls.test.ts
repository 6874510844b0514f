// https model servers signed by a private CA: an HTTPRoute URL backend tollgate cannot reach is logged with the reason
// and the request id, and GatewaySettings upstream.caFile, taken from a reload on, makes the proxy and the picker's
// scrapes trust the CA beside Node's roots (NODE_EXTRA_CA_CERTS's among them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { certificates } from './helpers/certificates.js';
import { collectingLogger } from './helpers/log-lines.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { IDLE_METRICS } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  endpoint?: string;
  error?: string;
}

const WARN = 40;
const dir = mkdtempSync(join(tmpdir(), 'tollgate-upstream-tls-'));
let server: Server;
let url: string;
let gw: Gateway;
const { logger, lines } = collectingLogger<LogLine>();

const settingsYaml = (upstream: string) => `apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: s }\nspec: { upstream: ${upstream} }\n`;

before(async () => {
  certificates(dir, { server: 'IP:127.0.0.1' });
  server = createServer({ cert: readFileSync(join(dir, 'server.pem')), key: readFileSync(join(dir, 'server.key')) }, (req, res) => {
    if (req.url === '/metrics') return void res.end(IDLE_METRICS);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ from: 'private-ca', path: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(url));
  writeFileSync(
    join(dir, 'route.yaml'),
    `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }\nspec:\n  rules:\n    - matches: [{ path: { type: PathPrefix, value: /custom } }]\n      backendRefs: [{ url: "${url}" }]\n`,
  );
  writeFileSync(join(dir, 'settings.yaml'), settingsYaml('{}'));
  gw = await startGateway({ configPaths: [join(dir, 'models.yaml'), join(dir, 'route.yaml'), join(dir, 'settings.yaml')], ...LOOPBACK, logger });
});

after(async () => {
  await gw?.close();
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const custom = async () => {
  const res = await request(`${gw.url}/custom/thing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  return { status: res.statusCode, requestId: res.headers['x-request-id'], body: (await res.body.json()) as { from?: string; error?: { code: string; message: string } } };
};

const chat = async () => {
  const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  await res.body.text();
  return res.statusCode;
};

describe('a private CA', () => {
  test('a URL backend that cannot be reached is logged at warn with the reason the client got and the request id', async () => {
    const r = await custom();
    assert.equal(r.status, 503);
    assert.equal(r.body.error?.code, 'upstream_unavailable');
    assert.match(r.body.error!.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    const warned = lines.filter((l) => l.level === WARN && l.requestId === r.requestId);
    assert.deepEqual(
      warned.map(({ msg, endpoint, error }) => ({ msg, endpoint, error })),
      [{ msg: 'a model server could not be reached', endpoint: new URL(url).host, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }],
    );
  });

  test('upstream.caFile, from the reload that sets it, is trusted by the proxy and by the scrapes', async () => {
    assert.equal(await chat(), 503, 'the endpoint the scrapes cannot verify is not picked');
    writeFileSync(join(dir, 'settings.yaml'), settingsYaml(`{ caFile: "${join(dir, 'ca.pem')}" }`));
    assert.equal(await gw.reload(), true);
    const r = await custom();
    assert.deepEqual([r.status, r.body.from], [200, 'private-ca']);
    await untilEndpoints(gw);
    assert.equal(await chat(), 200);
  });

  test('a caFile that cannot be used is refused by the reload, naming the field; the running one stays', async () => {
    writeFileSync(join(dir, 'settings.yaml'), settingsYaml(`{ caFile: "${join(dir, 'server.csr')}" }`));
    assert.equal(await gw.reload(), false);
    const refused = lines.find((l) => l.msg.startsWith('configuration change rejected')) as unknown as { problems: string[] };
    assert.match(refused.problems[0], /spec\.upstream\.caFile: .*server\.csr holds no certificate/);
    assert.equal((await custom()).status, 200);
  });
});

// In a child process: Node reads NODE_EXTRA_CA_CERTS only at start.
const trustScenario = (dir: string) => `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { Client } from 'undici';
import { upstreamTls } from ${JSON.stringify(fileURLToPath(new URL('../src/lib/upstream-tls.ts', import.meta.url)))};
const file = (name) => readFileSync(${JSON.stringify(dir)} + '/' + name);
const serve = async (name) => {
  const server = createServer({ cert: file(name + '.pem'), key: file(name + '.key') }, (req, res) => res.end('ok'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
};
const servers = [await serve('server'), await serve('extra-server')];
const get = async (server, tls) => {
  const client = new Client('https://127.0.0.1:' + server.address().port, { connect: tls });
  try {
    return await (await client.request({ method: 'GET', path: '/' })).body.text();
  } catch (err) {
    return err.code;
  } finally {
    await client.close();
  }
};
const seen = {};
for (const [label, tls] of [['caFile', upstreamTls({ tlsRejectUnauthorized: true, ca: file('ca.pem').toString('latin1') })], ['none', upstreamTls({ tlsRejectUnauthorized: true })]]) {
  seen[label] = [await get(servers[0], tls), await get(servers[1], tls)];
}
console.log(JSON.stringify(seen));
for (const server of servers) server.close();
`;

test('caFile adds to the roots Node trusts, NODE_EXTRA_CA_CERTS included, rather than replacing them', () => {
  certificates(dir, { 'extra-server': 'IP:127.0.0.1' }, 'extra-ca');
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', trustScenario(dir)], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'extra-ca.pem') },
    timeout: 20_000,
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), { caFile: ['ok', 'ok'], none: ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ok'] });
});
