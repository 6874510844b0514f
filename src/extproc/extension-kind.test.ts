import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extensionChainSpec } from './extension-kind.js';

test('an ExtensionChain: defaults, durations, and the mistakes it refuses', () => {
  const ok = extensionChainSpec.parse({ extensions: [{ name: 'apigee', address: 'apigee.internal:443', supportedEvents: ['RequestHeaders', 'RequestBody'], timeout: '500ms' }] });
  assert.deepEqual(ok.extensions[0], {
    name: 'apigee',
    address: 'apigee.internal:443',
    supportedEvents: ['RequestHeaders', 'RequestBody'],
    requestBodySendMode: 'BUFFERED',
    responseBodySendMode: 'BUFFERED',
    timeout: 500,
    failOpen: false,
  });
  const bad = (ext: object) => !extensionChainSpec.safeParse({ extensions: [{ name: 'e', address: '10.0.0.1:9002', supportedEvents: ['RequestHeaders'], ...ext }] }).success;
  assert.ok(bad({ address: 'no-port' }));
  assert.ok(bad({ timeout: '20s' }));
  assert.ok(bad({ supportedEvents: ['RequestTrailers'] }));
  assert.ok(bad({ tls: { cert: 'c.pem' } }), 'cert without key');
  assert.ok(bad({ unknown: true }));
  assert.ok(!extensionChainSpec.safeParse({ extensions: [] }).success);
  const twice = { name: 'e', address: '[::1]:9002', supportedEvents: ['RequestHeaders'] };
  assert.ok(!extensionChainSpec.safeParse({ extensions: [twice, twice] }).success, 'names are unique');
});

test("an ExtensionChain's tls files are read as it loads: one that cannot be read or used is an issue at its field", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-extension-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'this is not a certificate\n');
  const issues = (tls: object) => {
    const r = extensionChainSpec.safeParse({ extensions: [{ name: 'e', address: '10.0.0.1:9002', supportedEvents: ['RequestHeaders'], tls }] });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  // Before: accepted here, and read where the chain's channel was made (a throw there ended a reloading process).
  assert.deepEqual(issues({ ca: join(dir, 'missing.pem') }), [`extensions.0.tls.ca: cannot read ${join(dir, 'missing.pem')}: no such file`]);
  assert.deepEqual(issues({ ca: notPem }), [`extensions.0.tls.ca: ${notPem} holds no certificate, or one that cannot be read (PEM expected)`]);
  assert.deepEqual(issues({ cert: join(dir, 'missing.pem'), key: notPem }), [`extensions.0.tls.cert: cannot read ${join(dir, 'missing.pem')}: no such file`]);
  assert.match(issues({ cert: notPem, key: notPem })[0], /^extensions\.0\.tls: the certificate and key cannot be used: /);
  assert.deepEqual(issues({ cert: notPem }), ['extensions.0.tls: tls.cert and tls.key go together']);
  assert.deepEqual(issues({}), [], 'no files: Node\'s roots verify the server');
});
