// An ExtensionChain's tls files are read as the configuration loads: one that cannot be read is a rejected reload
// naming the field, and the last good configuration stays. Before, the files were read where the chain's channels
// were made, inside the reload's apply: the throw ended the process (a typo'd path dropped into the directory, or a
// CA file rotated away and then any change of server.maxBodyBytes, which rebuilds the chain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/gateway.js';
import { certificates } from './helpers/certificates.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const chain = (ca: string) => `apiVersion: tollgate.dev/v1alpha1
kind: ExtensionChain
metadata: { name: pdp }
spec:
  extensions:
    - { name: authz, address: "127.0.0.1:9", supportedEvents: [RequestHeaders], failOpen: true, tls: { ca: "${ca}" } }
`;

const settings = (maxBodyBytes: number) => `apiVersion: tollgate.dev/v1alpha1
kind: GatewaySettings
metadata: { name: settings }
spec: { server: { maxBodyBytes: ${maxBodyBytes} } }
`;

test('an ExtensionChain whose tls file cannot be read: the reload is rejected naming the field, and the gateway serves on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-chain-tls-'));
  const pki = mkdtempSync(join(tmpdir(), 'tollgate-reload-chain-pki-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(pki, { recursive: true, force: true });
  });
  certificates(pki, {});
  const ca = join(pki, 'ca.pem');
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml('http://127.0.0.1:9'));
  const logs: { msg?: string; problems?: string[] }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const gw = await startGateway({ configPaths: [dir], ...LOOPBACK, logger });
  t.after(() => gw.close());
  const rejected = () => logs.filter((l) => l.msg?.startsWith('configuration change rejected')).at(-1)?.problems ?? [];

  // A typo'd path dropped into the directory.
  writeFileSync(join(dir, 'chain.yaml'), chain(join(pki, 'pdp-ca.pem')));
  assert.equal(await gw.reload(), false);
  assert.match(rejected()[0], /chain\.yaml document 0 \(ExtensionChain\/pdp\): spec\.extensions\[0\]\.tls\.ca: cannot read .*pdp-ca\.pem: no such file/);
  assert.ok(!gw.config.manifests.some((m) => m.kind === 'ExtensionChain'));

  // Fixed: it applies. Then its CA file goes (rotated away), and a change that rebuilds the chain comes.
  writeFileSync(join(dir, 'chain.yaml'), chain(ca));
  assert.equal(await gw.reload(), true);
  unlinkSync(ca);
  writeFileSync(join(dir, 'settings.yaml'), settings(1024 * 1024));
  assert.equal(await gw.reload(), false);
  assert.match(rejected()[0], /\(ExtensionChain\/pdp\): spec\.extensions\[0\]\.tls\.ca: cannot read .*ca\.pem: no such file/);
  assert.notEqual(gw.config.settings.server.maxBodyBytes, 1024 * 1024, 'the last good configuration stays');
  const health = await fetch(`${gw.adminUrl}/healthz`);
  assert.equal(health.status, 200);
});
