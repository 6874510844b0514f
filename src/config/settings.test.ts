// Durations in GatewaySettings and InferenceModel.timeouts are checked at load: longer than a timer can wait (Node
// fires it after 1 ms) or 0 where 0 would not mean "off" but "at once" is a configuration error naming the field, as
// is an upstream.caFile that cannot be used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseManifests } from './manifest.js';
import { DEFAULT_SETTINGS } from './settings.js';

/** The problems of one GatewaySettings document whose spec is `spec` (flow YAML). */
function problems(spec: string, kind = 'GatewaySettings'): string[] {
  const text =
    kind === 'GatewaySettings'
      ? `apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: s }\nspec: ${spec}\n`
      : `apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: { name: s }\nspec: ${spec}\n`;
  try {
    parseManifests(text, 'f.yaml');
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

/** `{a: {b: value}}` for the field path `a.b`. */
const nested = (path: string, value: string) => path.split('.').reduceRight((inner, key) => `{ ${key}: ${inner} }`, value);

const TIMERS = [
  'server.bodyTimeout',
  'server.keepAliveTimeout',
  'server.headersTimeout',
  'server.shutdownGracePeriod',
  'upstream.connectTimeout',
  'upstream.firstByteTimeout',
  'upstream.responseTimeout',
  'scheduler.flowControl.maxWait',
  'analytics.flushInterval',
  'analytics.writeTimeout',
  'tracing.exportInterval',
];

test('a duration longer than 24d is refused, naming the field, wherever a timer waits it', () => {
  for (const path of TIMERS) {
    assert.deepEqual(problems(nested(path, '30d')), [`f.yaml document 0 (GatewaySettings/s): spec.${path}: must be at most 24d (the longest a timer can wait)`], path);
  }
  assert.ok(problems('{ scheduler: { scrapeInterval: 30d } }').includes('f.yaml document 0 (GatewaySettings/s): spec.scheduler.scrapeInterval: must be at most 24d (the longest a timer can wait)'));
  assert.deepEqual(problems('{ scheduler: { scrapeInterval: 1d, staleAfter: 25d } }'), [
    'f.yaml document 0 (GatewaySettings/s): spec.scheduler.staleAfter: must be at most 24d (the longest a timer can wait)',
  ]);
  assert.deepEqual(problems('{ upstream: { responseTimeout: 24d } }'), []);
});

test('0 is refused where it would expire at once rather than turn the limit off', () => {
  const live = ['server.bodyTimeout', 'server.keepAliveTimeout', 'upstream.firstByteTimeout', 'upstream.responseTimeout', 'analytics.flushInterval', 'analytics.writeTimeout', 'tracing.exportInterval'];
  for (const path of live) {
    for (const zero of ['0s', '0.5ms']) {
      assert.deepEqual(problems(nested(path, zero)), [`f.yaml document 0 (GatewaySettings/s): spec.${path}: must be at least 1ms (0 does not turn it off)`], `${path} ${zero}`);
    }
  }
  assert.ok(problems('{ scheduler: { scrapeInterval: 0.001ms } }').includes('f.yaml document 0 (GatewaySettings/s): spec.scheduler.scrapeInterval: must be at least 1ms (0 does not turn it off)'));
  assert.ok(problems('{ scheduler: { staleAfter: 0s } }').includes('f.yaml document 0 (GatewaySettings/s): spec.scheduler.staleAfter: must be at least 1ms (0 does not turn it off)'));
});

test('0 stays valid where it has a meaning: no header limit, no grace, no connect limit, no queueing', () => {
  for (const path of ['server.headersTimeout', 'server.shutdownGracePeriod', 'upstream.connectTimeout', 'scheduler.flowControl.maxWait', 'scheduler.saturation.metricsFreshness']) {
    assert.deepEqual(problems(nested(path, '0s')), [], path);
  }
});

test('analytics.retention is compared with record times, not waited: longer than 24d is fine, under 1h is refused', () => {
  assert.deepEqual(problems('{ analytics: { retention: 400d } }'), []);
  // Beyond it, every PostgreSQL delete failed (its cutoff is no bigint), hour after hour.
  assert.deepEqual(problems('{ analytics: { retention: 99999999999d } }'), ['f.yaml document 0 (GatewaySettings/s): spec.analytics.retention: must be at most 36500d']);
  for (const short of ['0s', '59m']) {
    assert.deepEqual(problems(`{ analytics: { retention: ${short} } }`), ['f.yaml document 0 (GatewaySettings/s): spec.analytics.retention: must be at least 1h (0 does not turn it off: it deletes every record)'], short);
  }
});

test('audit.retention is off unless set, compared with row times (400d is fine), at least a day and at most a century', () => {
  assert.equal(DEFAULT_SETTINGS.audit.retention, undefined);
  assert.deepEqual(problems('{ audit: { retention: 400d } }'), []);
  for (const short of ['0s', '23h']) {
    assert.deepEqual(problems(`{ audit: { retention: ${short} } }`), ['f.yaml document 0 (GatewaySettings/s): spec.audit.retention: must be at least 1d'], short);
  }
  // Past any date a clock can name (the cutoff would be before year -271821): refused rather than failing every sweep.
  assert.deepEqual(problems('{ audit: { retention: 99999999999d } }'), ['f.yaml document 0 (GatewaySettings/s): spec.audit.retention: must be at most 36500d (leave it out to keep every row)']);
});

test('InferenceModel timeouts are bounded as the upstream settings they override', () => {
  const model = (timeouts: string) => problems(`{ modelName: a, poolRef: { name: p }, timeouts: ${timeouts} }`, 'InferenceModel');
  assert.deepEqual(model('{ response: 0s }'), ['f.yaml document 0 (InferenceModel/s): spec.timeouts.response: must be at least 1ms (0 does not turn it off)']);
  assert.deepEqual(model('{ firstByte: 30d }'), ['f.yaml document 0 (InferenceModel/s): spec.timeouts.firstByte: must be at most 24d (the longest a timer can wait)']);
});

test('upstream.caFile is read at load: a file that cannot be read or holds no certificate is refused, naming the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-file-'));
  try {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    assert.deepEqual(problems(`{ upstream: { caFile: "${join(dir, 'missing.pem')}" } }`), [`f.yaml document 0 (GatewaySettings/s): spec.upstream.caFile: cannot read ${join(dir, 'missing.pem')}: no such file`]);
    assert.deepEqual(problems(`{ upstream: { caFile: "${garbage}" } }`), [`f.yaml document 0 (GatewaySettings/s): spec.upstream.caFile: ${garbage} holds no certificate, or one that cannot be read (PEM expected)`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
