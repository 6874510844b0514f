import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig, type RuntimeConfig } from '../config/runtime-config.js';
import { manifestOf } from '../config/manifest.js';
import { captureLogger } from '../scheduler/testing.js';
import { EndpointAddresses, type LookupAll } from './endpoint-addresses.js';

/** A pool over `endpoints`, and an HTTPRoute to `url` when given. */
function config(endpoints: string[], url?: string): RuntimeConfig {
  return compileConfig([
    manifestOf('InferencePool', 'pool', { endpoints }, 'test'),
    ...(url ? [manifestOf('HTTPRoute', 'r', { rules: [{ backendRefs: [{ url, weight: 1 }] }] }, 'test')] : []),
  ]);
}

const addresses = (c: RuntimeConfig) => [
  ...c.pools.get('pool')!.endpoints.map((e) => e.address),
  ...c.routes.flatMap((r) => r.backends!.values.map((b) => (b.kind === 'url' ? b.address : ''))),
];

type Answer = { address: string; family: number }[] | Error;

/** A resolver answering each name from `answers` (changed by the test between lookups), counting its lookups. */
function fakeDns(answers: Record<string, Answer>) {
  const calls: string[] = [];
  const lookup: LookupAll = async (host) => {
    calls.push(host);
    const a = answers[host];
    if (a === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    if (a instanceof Error) throw a;
    return a;
  };
  return { lookup, calls, answers };
}

const v4 = (address: string) => ({ address, family: 4 });
const v6 = (address: string) => ({ address, family: 6 });

describe('EndpointAddresses', () => {
  test('host names become ip:port on each endpoint\'s own port; IP literals stay as written', async () => {
    const dns = fakeDns({ vllm: [v4('10.0.0.5')], 'vllm6.internal': [v6('fd00::5')], 'api.example.com': [v4('192.0.2.7')] });
    const c = config(['http://vllm:8000', 'https://vllm:8443', 'http://vllm6.internal:8000', 'http://10.1.1.1:8000', 'http://[fd00::9]:8000'], 'https://api.example.com');
    assert.deepEqual(addresses(c), ['vllm:8000', 'vllm:8443', 'vllm6.internal:8000', '10.1.1.1:8000', '[fd00::9]:8000', 'api.example.com:443'], 'as compiled');
    await new EndpointAddresses(captureLogger().logger, dns.lookup).resolve(c);
    assert.deepEqual(addresses(c), ['10.0.0.5:8000', '10.0.0.5:8443', '[fd00::5]:8000', '10.1.1.1:8000', '[fd00::9]:8000', '192.0.2.7:443']);
    assert.deepEqual(dns.calls.sort(), ['api.example.com', 'vllm', 'vllm6.internal'], 'one lookup per name');
  });

  test('one address per name: IPv4 first, and the one it has while the name still resolves to it', async () => {
    const dns = fakeDns({ vllm: [v6('fd00::5'), v4('10.0.0.5'), v4('10.0.0.6')] });
    const c = config(['http://vllm:8000']);
    const a = new EndpointAddresses(captureLogger().logger, dns.lookup);
    await a.resolve(c);
    assert.deepEqual(addresses(c), ['10.0.0.5:8000']);
    // Round-robin DNS: another order at each lookup.
    dns.answers.vllm = [v4('10.0.0.6'), v4('10.0.0.5')];
    await a.refresh(c);
    assert.deepEqual(addresses(c), ['10.0.0.5:8000']);
  });

  test('a refresh follows a change and keeps the last address while lookups fail, logging each change once', async () => {
    const dns = fakeDns({ vllm: [v4('10.0.0.5')] });
    const { logger, lines } = captureLogger();
    const a = new EndpointAddresses(logger, dns.lookup);
    const c = config(['http://vllm:8000']);
    await a.resolve(c);
    assert.equal(lines.length, 0);

    dns.answers.vllm = [v4('10.0.0.7')];
    await a.refresh(c);
    assert.deepEqual(addresses(c), ['10.0.0.7:8000']);
    assert.deepEqual(lines.map((l) => [l.host, l.address, l.was]), [['vllm', '10.0.0.7', '10.0.0.5']]);

    dns.answers.vllm = new Error('getaddrinfo EAI_AGAIN vllm');
    await a.refresh(c);
    await a.refresh(c);
    assert.deepEqual(addresses(c), ['10.0.0.7:8000'], 'the last good address stays');
    assert.deepEqual(lines.slice(1).map((l) => [l.level, l.host, l.address, l.error]), [[40, 'vllm', '10.0.0.7', 'getaddrinfo EAI_AGAIN vllm']], 'logged once');

    dns.answers.vllm = [v4('10.0.0.7')];
    await a.refresh(c);
    assert.equal(lines.length, 3, 'the recovery is logged');
    assert.equal(lines[2].address, '10.0.0.7');
  });

  test('a reloaded configuration takes known names\' addresses at once, without waiting for a lookup', async () => {
    const dns = fakeDns({ vllm: [v4('10.0.0.5')] });
    const a = new EndpointAddresses(captureLogger().logger, dns.lookup);
    await a.resolve(config(['http://vllm:8000']));
    const next = config(['http://vllm:8000', 'http://vllm:9000']);
    void a.resolve(next);
    assert.deepEqual(addresses(next), ['10.0.0.5:8000', '10.0.0.5:9000']);
    assert.equal(dns.calls.length, 1);
  });

  test('a name no lookup ever found keeps name:port (and a lookup still out is not started again)', async () => {
    let answer!: (a: { address: string; family: number }[]) => void;
    let calls = 0;
    const lookup: LookupAll = () => {
      calls++;
      return new Promise((resolve) => (answer = resolve));
    };
    const a = new EndpointAddresses(captureLogger().logger, lookup);
    const c = config(['http://slow:8000']);
    const first = a.resolve(c);
    const again = a.refresh(c);
    assert.equal(calls, 1);
    assert.deepEqual(addresses(c), ['slow:8000']);
    answer([v4('10.0.0.9')]);
    await Promise.all([first, again]);
    assert.deepEqual(addresses(c), ['10.0.0.9:8000']);

    const unknown = config(['http://nowhere:8000']);
    await new EndpointAddresses(captureLogger().logger, fakeDns({}).lookup).resolve(unknown);
    assert.deepEqual(addresses(unknown), ['nowhere:8000']);
  });
});
