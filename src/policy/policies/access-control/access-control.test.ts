// AccessControl: config errors, CIDR matching for IPv4 and IPv6, first rule wins, X-Forwarded-For from trusted
// proxies only (right-most untrusted hop), and the faults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newContext } from '../../../gateway/data-plane.js';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { testDeps } from '../../testing.js';
import { ACCESS_CONTROL_FAULTS, accessControl } from './access-control.js';
import { compileAddresses } from './address-set.js';

const deps = testDeps(new MemoryCounterStore());

const configErrors: [spec: unknown, message: RegExp][] = [
  [{ rules: [] }, /rules/],
  [{ rules: [{ action: 'ALLOW', sourceAddresses: ['10.0.0.0/33'] }] }, /rules\[0\].sourceAddresses\[0\]: "10.0.0.0\/33" is not an IP address or CIDR range/],
  [{ rules: [{ action: 'ALLOW', sourceAddresses: ['example.com'] }] }, /is not an IP address/],
  [{ rules: [{ action: 'ALLOW', sourceAddresses: ['1.2.3.4'] }], trustedProxies: ['2001:db8::/129'] }, /trustedProxies\[0\]/],
  [{ rules: [{ action: 'MAYBE', sourceAddresses: ['1.2.3.4'] }] }, /action/],
];
for (const [spec, message] of configErrors) test(`config: ${JSON.stringify(spec)} is refused`, () => assert.throws(() => accessControl('ac', spec, deps), message));

const membership: [address: string, inSet: boolean][] = [
  ['10.1.2.3', true],
  ['::ffff:10.1.2.3', true],
  ['11.0.0.1', false],
  ['2001:db8::1', true],
  ['2001:db9::1', false],
  ['192.0.2.7', true],
  ['192.0.2.8', false],
  ['not-an-ip', false],
];
const set = compileAddresses(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], 'x');
for (const [address, inSet] of membership) test(`${address} in the set → ${inSet}`, () => assert.equal(set.has(address), inSet));

const codeOf = (policy: ReturnType<typeof accessControl>, peer: string, xff?: string): string => {
  try {
    policy.intercept!(newContext('POST', '/v1/chat/completions', xff === undefined ? {} : { 'x-forwarded-for': xff }, peer), {});
    return 'ok';
  } catch (err) {
    return `${(err as GatewayError).status} ${(err as GatewayError).code}`;
  }
};

test('the first matching rule decides; unmatched clients get noRuleMatchAction', () => {
  const policy = accessControl('ac', {
    rules: [{ action: 'DENY', sourceAddresses: ['10.9.0.0/16'] }, { action: 'ALLOW', sourceAddresses: ['10.0.0.0/8', '2001:db8::/32'] }],
    noRuleMatchAction: 'DENY',
  }, deps);
  assert.equal(codeOf(policy, '10.1.0.1'), 'ok');
  assert.equal(codeOf(policy, '::ffff:10.1.0.1'), 'ok');
  assert.equal(codeOf(policy, '2001:db8::5'), 'ok');
  assert.equal(codeOf(policy, '10.9.0.1'), `403 ${ACCESS_CONTROL_FAULTS.ipDeniedAccess}`);
  assert.equal(codeOf(policy, '203.0.113.1'), `403 ${ACCESS_CONTROL_FAULTS.ipDeniedAccess}`);
});

test('X-Forwarded-For counts only from a trusted proxy, and then its right-most untrusted hop', () => {
  const policy = accessControl('ac', { rules: [{ action: 'DENY', sourceAddresses: ['198.51.100.0/24'] }], trustedProxies: ['10.0.0.0/8'] }, deps);
  const denied = `403 ${ACCESS_CONTROL_FAULTS.ipDeniedAccess}`;
  assert.equal(codeOf(policy, '10.0.0.2', '198.51.100.9'), denied);
  assert.equal(codeOf(policy, '10.0.0.2', '198.51.100.9, 10.0.0.7'), denied, 'trusted hops are skipped');
  // A client cannot hide behind a forged left-most entry: the right-most untrusted hop is what the proxy saw.
  assert.equal(codeOf(policy, '10.0.0.2', '203.0.113.5, 198.51.100.9'), denied);
  assert.equal(codeOf(policy, '10.0.0.2', '198.51.100.9, 203.0.113.5'), 'ok');
  assert.equal(codeOf(policy, '203.0.113.5', '198.51.100.9'), 'ok', 'an untrusted peer\'s header is ignored');
  assert.equal(codeOf(policy, '198.51.100.9', '203.0.113.5'), denied, 'and cannot launder a denied peer');
  assert.equal(codeOf(policy, '10.0.0.2', 'garbage'), `400 ${ACCESS_CONTROL_FAULTS.invalidIpAddress}`);
});
