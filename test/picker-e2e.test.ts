// The endpoint picker end to end, through the gateway in front of simulated servers: load avoidance, prefix and
// LoRA affinity, failure fallback, the fleet view, and shedding under overload. Outcomes are compared, not timed.
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { waitFor } from '../src/sim/testing.js';
import { manifest, settings } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { parseQueueCounts } from '../bench/routing-target.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const BASE = 'base-model';
const WORDS = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa'.split(' ');

function text(words: number, salt: number): string {
  return Array.from({ length: words }, (_, i) => WORDS[(i * 7 + salt * 13 + ((i * salt) % 5)) % WORDS.length]).join(' ');
}

function chat(url: string, model: string, content: string, opts: { system?: string; maxTokens?: number; signal?: AbortSignal } = {}): Promise<Response> {
  const messages = [...(opts.system ? [{ role: 'system', content: opts.system }] : []), { role: 'user', content }];
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // Exactly maxTokens (vLLM's ignore_eos): the load each test builds depends on how long its requests run.
    body: JSON.stringify({ model, messages, max_tokens: opts.maxTokens ?? 4, ignore_eos: true }),
    signal: opts.signal,
  });
}

/** Requests each server received while `fn` ran. */
async function received(fleet: SimFleet, fn: () => Promise<void>): Promise<number[]> {
  const before = fleet.servers.map((s) => s.state().requests);
  await fn();
  return fleet.servers.map((s, i) => s.state().requests - before[i]);
}

/**
 * Resolves once the picker has scraped the fleet's current queues: every endpoint ready, showing the waiting and
 * running counts its simulator has. Waited for, not assumed after a few scrape intervals: on a loaded machine scrapes
 * come late.
 */
function scraped(fleet: SimFleet, gw: Gateway): Promise<void> {
  const byUrl = new Map(fleet.servers.map((s) => [s.url, s]));
  return untilEndpoints(gw, (e) => {
    const now = byUrl.get(e.url)!.state();
    return e.status === 'ready' && e.metrics.waiting === now.waiting && e.metrics.running === now.running;
  });
}

/** A slow scrape on a loaded machine must not make an endpoint stale, and so not pickable, for the tests below. */
const patientScrapes = settings({ scheduler: { staleAfter: '5s' } });

describe('routing', () => {
  let fleet: SimFleet;
  let gw: Gateway;

  before(async () => {
    fleet = await startSimFleet({ replicas: 4, model: BASE, loras: ['lora-a', 'lora-b', 'lora-c', 'lora-d'], maxLoras: 2, maxNumSeqs: 4, timeScale: 20 });
    gw = await startGateway({
      configPaths: [],
      manifests: [
        manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
        manifest('InferenceModel', 'base', { modelName: BASE, poolRef: { name: 'pool' } }),
        ...['a', 'b', 'c', 'd'].map((x) => manifest('InferenceModel', `lora-${x}`, { modelName: `lora-${x}`, poolRef: { name: 'pool' } })),
        patientScrapes,
      ],
      ...LOOPBACK,
    });
  });

  after(async () => {
    await gw.close();
    await fleet.close();
  });

  test('avoids a loaded endpoint', async () => {
    const busy = fleet.servers[0];
    const load = new AbortController();
    // Long generations straight to the simulator: 4 running and 12 waiting there, invisible to the gateway but in its metrics.
    const direct = Array.from({ length: 16 }, (_, i) => chat(busy.url, BASE, `load ${i}`, { maxTokens: 5000, signal: load.signal }).catch(() => null));
    try {
      await waitFor(() => busy.state().waiting >= 8, 10_000, 'the direct load to queue', 50);
      await scraped(fleet, gw);
      const counts = await received(fleet, async () => {
        for (let i = 0; i < 12; i++) assert.equal((await chat(gw.url, BASE, `question ${i} ${text(20, i)}`)).status, 200);
      });
      assert.ok(counts[0] <= 1, `the loaded endpoint got ${counts[0]} of 12: ${counts}`);
    } finally {
      load.abort();
      await Promise.all(direct);
    }
    await waitFor(() => busy.state().waiting + busy.state().running === 0, 10_000, 'the loaded endpoint to drain', 50);
  });

  test('follows prefix affinity', async () => {
    await scraped(fleet, gw);
    const system = text(1500, 3);
    const first = await received(fleet, async () => {
      assert.equal((await chat(gw.url, BASE, 'first question', { system })).status, 200);
    });
    const home = first.indexOf(1);
    const rest = await received(fleet, async () => {
      for (let i = 0; i < 8; i++) assert.equal((await chat(gw.url, BASE, `follow-up ${i}`, { system })).status, 200);
    });
    assert.ok(rest[home] >= 7, `${rest[home]} of 8 followed the first to endpoint ${home}: ${rest}`);
    assert.ok(fleet.servers[home].engine.prefixHitTokens > 0, 'the endpoint served the shared prompt from its prefix cache');
  });

  test('keeps adapters together', async () => {
    await scraped(fleet, gw);
    // vLLM lists an adapter as running only while requests use it, so affinity shows with one in flight.
    const long = new AbortController();
    const anchor = chat(gw.url, 'lora-c', 'a long answer', { maxTokens: 5000, signal: long.signal }).catch(() => null);
    try {
      await waitFor(() => fleet.servers.some((s) => s.state().residentLoras.includes('lora-c') && s.state().running > 0), 10_000, 'lora-c to be running', 50);
      await scraped(fleet, gw);
      const counts = await received(fleet, async () => {
        for (let i = 0; i < 8; i++) assert.equal((await chat(gw.url, 'lora-c', `adapter question ${i}`)).status, 200);
      });
      const used = counts.filter((c) => c > 0).length;
      assert.ok(used <= 2, `lora-c requests spread over ${used} endpoints: ${counts}`);
    } finally {
      long.abort();
      await anchor;
    }
  });

  test('fleet view: GET /v1/pools and /v1/pools/{name}', async () => {
    const list = (await (await fetch(`${gw.adminUrl}/v1/pools`)).json()) as { items: { name: string }[] };
    assert.deepEqual(list.items.map((p) => p.name), ['pool']);
    const res = await fetch(`${gw.adminUrl}/v1/pools/pool`);
    assert.equal(res.status, 200);
    const pool = (await res.json()) as Record<string, unknown> & { endpoints: Record<string, unknown>[]; decisions: Record<string, unknown>[]; profile: { scorers: { type: string; weight: number }[] } };
    for (const key of ['name', 'engine', 'saturated', 'utilization', 'queueLength', 'profile', 'endpoints', 'decisions']) assert.ok(key in pool, `pool view has ${key}`);
    assert.equal(pool.endpoints.length, 4);
    for (const key of ['url', 'address', 'status', 'healthy', 'freshnessMs', 'inFlight', 'metrics', 'lastScores']) assert.ok(key in pool.endpoints[0], `endpoint view has ${key}`);
    assert.ok(pool.decisions.length > 0);
    for (const key of ['at', 'model', 'endpoint', 'scores', 'total', 'priority']) assert.ok(key in pool.decisions[0], `decision has ${key}`);
    assert.deepEqual(
      pool.profile.scorers.map((s) => [s.type, s.weight]),
      [['queue-scorer', 3], ['least-requests-scorer', 1], ['kv-cache-utilization-scorer', 2], ['prefix-cache-scorer', 4], ['lora-affinity-scorer', 6]],
    );
    assert.equal((await fetch(`${gw.adminUrl}/v1/pools/nope`)).status, 404);
  });

  test('an endpoint answering every request 503 (its metrics idle) is tried again only now and then, not first for its prefix', async () => {
    await scraped(fleet, gw);
    const system = text(1500, 11);
    const first = await received(fleet, async () => {
      assert.equal((await chat(gw.url, BASE, 'where does this prefix live', { system })).status, 200);
    });
    const home = first.indexOf(1);
    const broken = fleet.servers[home];
    broken.failNext(1_000_000, 503);
    try {
      const counts = await received(fleet, async () => {
        for (let i = 0; i < 20; i++) assert.equal((await chat(gw.url, BASE, `question ${i}`, { system })).status, 200);
      });
      // Before: it stayed first for the prefix it held, and each of the 20 requests paid an attempt there.
      assert.ok(counts[home] <= 6, `the failing endpoint got ${counts[home]} of 20 attempts: ${counts}`);
    } finally {
      broken.failNext(0, 503);
    }
  });

  test('falls back when an endpoint fails, and takes it back when it recovers', async () => {
    const victim = fleet.servers[1];
    const victimView = async () => {
      const view = (await (await fetch(`${gw.adminUrl}/v1/pools/pool`)).json()) as { endpoints: { url: string; healthy: boolean; restingMs: number }[] };
      return view.endpoints.find((e) => e.url === victim.url)!;
    };
    const healthy = async () => (await victimView()).healthy;
    victim.kill();
    try {
      for (let i = 0; i < 12; i++) assert.equal((await chat(gw.url, BASE, `during the outage ${i}`)).status, 200);
      await waitFor(async () => !(await healthy()), 10_000, 'the killed endpoint to show unhealthy', 50);
    } finally {
      victim.revive();
    }
    // Healthy again, and past the rest its failed answers earned (others are tried first meanwhile, by design).
    await waitFor(async () => {
      const v = await victimView();
      return v.healthy && v.restingMs === 0;
    }, 10_000, 'the revived endpoint to show healthy and rested', 50);
    const counts = await received(fleet, async () => {
      await Promise.all(Array.from({ length: 16 }, (_, i) => chat(gw.url, BASE, `after recovery ${i}`, { maxTokens: 200 }).then((r) => r.text())));
    });
    assert.ok(counts[1] > 0, `the revived endpoint takes traffic again: ${counts}`);
  });
});

describe('overload', () => {
  let fleet: SimFleet;
  let gw: Gateway;

  before(async () => {
    fleet = await startSimFleet({ replicas: 2, model: BASE, maxNumSeqs: 2, timeScale: 20 });
    gw = await startGateway({
      configPaths: [],
      manifests: [
        manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
        manifest('InferenceModel', 'critical', { modelName: 'critical', poolRef: { name: 'pool' }, criticality: 'Critical', targetModels: [{ name: BASE, weight: 1 }] }),
        manifest('InferenceModel', 'sheddable', { modelName: 'sheddable', poolRef: { name: 'pool' }, criticality: 'Sheddable', targetModels: [{ name: BASE, weight: 1 }] }),
      ],
      ...LOOPBACK,
    });
  });

  after(async () => {
    await gw.close();
    await fleet.close();
  });

  const queueView = async () => (await (await fetch(`${gw.adminUrl}/v1/pools/pool`)).json()) as { queueLength: number; decisions: { at: string; priority: number }[] };

  test('sheds sheddable work while critical work waits and completes', async () => {
    const load = new AbortController();
    // 10 per endpoint straight to the simulators: 2 running, 8 waiting, above the saturation threshold of 5.
    const direct = fleet.servers.flatMap((s) => Array.from({ length: 10 }, (_, i) => chat(s.url, BASE, `load ${i}`, { maxTokens: 5000, signal: load.signal }).catch(() => null)));
    let critical: Promise<Response>;
    try {
      await waitFor(() => fleet.servers.every((s) => s.state().waiting >= 7), 10_000, 'the fleet to saturate', 50);
      await scraped(fleet, gw);
      const shed = await chat(gw.url, 'sheddable', 'can wait');
      assert.equal(shed.status, 429);
      assert.ok(shed.headers.get('retry-after'), 'a shed request says when to retry');
      await shed.text();

      critical = chat(gw.url, 'critical', 'must be served');
      await waitFor(async () => (await queueView()).queueLength === 1, 10_000, 'the critical request to queue', 50);
    } finally {
      load.abort();
      await Promise.all(direct);
    }
    const served = await critical;
    assert.equal(served.status, 200);
    const body = (await served.json()) as { usage: { completion_tokens: number } };
    assert.equal(body.usage.completion_tokens, 4);
  });

  test('a request whose client hangs up while it waits in the queue leaves the queue and never reaches a server', async () => {
    const load = new AbortController();
    const direct = fleet.servers.flatMap((s) => Array.from({ length: 10 }, (_, i) => chat(s.url, BASE, `load ${i}`, { maxTokens: 5000, signal: load.signal }).catch(() => null)));
    const aborted = async () => parseQueueCounts(await (await fetch(`${gw.adminUrl}/metrics`)).text())['critical/aborted'] ?? 0;
    let abortedAt = Infinity;
    try {
      await waitFor(() => fleet.servers.every((s) => s.state().waiting >= 7), 10_000, 'the fleet to saturate', 50);
      await scraped(fleet, gw);
      const abortedBefore = await aborted();
      const client = new AbortController();
      const waiting = chat(gw.url, 'critical', 'gone before its turn', { signal: client.signal }).catch((err: unknown) => err);
      await waitFor(async () => (await queueView()).queueLength === 1, 10_000, 'the request to queue', 50);
      abortedAt = Date.now();
      client.abort();
      assert.ok((await waiting) instanceof Error);
      await waitFor(async () => (await queueView()).queueLength === 0, 10_000, 'the queue to empty', 50);
      assert.equal(await aborted(), abortedBefore + 1);
      // The client's hang-up, not a 400 invalid_request as it was recorded before (usage record, access log, metrics).
      const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      assert.doesNotMatch(metrics, /error_code="invalid_request"/);
      assert.match(metrics, /inference_objective_request_error_total\{[^}]*error_code="client_closed"[^}]*\} [1-9]/);
    } finally {
      load.abort();
      await Promise.all(direct);
    }
    // Room again: had it stayed queued, it would be picked now.
    await scraped(fleet, gw);
    const late = (await queueView()).decisions.filter((d) => d.priority === 1 && Date.parse(d.at) >= abortedAt);
    assert.deepEqual(late, []);
  });
});
