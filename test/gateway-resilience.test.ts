// The data plane under upstream trouble, end to end over loopback: retries before the first byte (refused
// connections, 429), the first-byte and whole-response deadlines, /readyz, backpressure from a slow client, and
// priority, shedding and fairness through the objective and fairness headers. Outcomes are checked, never speed.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { freePort } from '../src/lib/ports.js';
import { collectingLogger, type AccessLine } from './helpers/log-lines.js';
import { waitFor } from '../src/sim/testing.js';
import type { PoolView } from '../src/scheduler/fleet-view.js';
import type { Manifest } from '../src/config/manifest.js';
import { IDLE_METRICS, json, queuedMetrics, sleep, startStub, type Stub } from './helpers/stub-upstream.js';
import { manifest, poolAndModel, settings } from './helpers/manifests.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };
/** Generous bounds so that a regression fails the test instead of hanging the run. */
const BOUNDED = { timeout: 30_000 };

/** A gateway on loopback, random ports; `lines` collects what it logs (the access log among it). */
async function gatewayFor(manifests: Manifest[]): Promise<{ gw: Gateway; lines: AccessLine[] }> {
  const { logger, lines } = collectingLogger();
  const gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger });
  return { gw, lines };
}

function post(gw: Gateway, body: unknown, headers: Record<string, string> = {}) {
  return request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

async function poolView(gw: Gateway, pool = 'pool'): Promise<PoolView> {
  const r = await request(`${gw.adminUrl}/v1/pools/${pool}`);
  assert.equal(r.statusCode, 200);
  return (await r.body.json()) as PoolView;
}

/** A stub that holds every inference request open (until the stub closes); /metrics still answers. */
const silent = () => new Promise<void>(() => {});

describe('retry on a connection error', async () => {
  // No scrape after the first one for the whole test (and metrics that stay fresh): the picker keeps offering an
  // endpoint that stopped listening after that scrape, as it would between two scrapes.
  const frozenScrapes = settings({ scheduler: { scrapeInterval: '1h', staleAfter: '2h', saturation: { metricsFreshness: '1h' } } });
  const stubs: Stub[] = [];
  const gateways: Gateway[] = [];
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all(stubs.map((s) => s.close()));
  });

  test('a refused connection moves on to the next endpoint', async () => {
    const refusing = await startStub();
    const good = await startStub();
    stubs.push(refusing, good);
    // Two queued requests on the good one make the picker prefer the (idle-looking) refusing one.
    good.metrics = queuedMetrics(2);
    const { gw, lines } = await gatewayFor([...poolAndModel([refusing.url, good.url]), frozenScrapes]);
    gateways.push(gw);
    const before = await poolView(gw);
    assert.deepEqual(before.endpoints.map((e) => [e.url, e.status]), [[refusing.url, 'ready'], [good.url, 'ready']]);

    await refusing.close();
    const r = await post(gw, CHAT, { 'x-request-id': 'refused-then-good' });
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as { echo: { model: string } }).echo.model, 'm');
    assert.equal(good.requests.length, 1);

    // The refusing endpoint was tried first: the access log counts two attempts, the second one answering ...
    await waitFor(() => lines.some((l) => l.msg === 'request' && l.requestId === 'refused-then-good'), 5000, 'the access log line');
    const line = lines.find((l) => l.msg === 'request' && l.requestId === 'refused-then-good')!;
    assert.equal(line.attempts, 2);
    assert.equal(line.endpoint, new URL(good.url).host);
    // ... and the picker took it out at once, without waiting for a scrape to fail.
    const refusingView = (await poolView(gw)).endpoints.find((e) => e.url === refusing.url)!;
    assert.equal(refusingView.healthy, false);
    assert.match(String(refusingView.lastError), /could not reach/);
  });

  test('a lone endpoint that refuses → 503 upstream_unavailable', async () => {
    const refusing = await startStub();
    stubs.push(refusing);
    const { gw } = await gatewayFor([...poolAndModel([refusing.url]), frozenScrapes]);
    gateways.push(gw);
    await refusing.close();
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 503);
    const body = (await r.body.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'upstream_unavailable');
    assert.equal(body.error.type, 'server_error');
    assert.match(body.error.message, /ECONNREFUSED/);
  });
});

describe('429 from a model server before the first byte', async () => {
  const limitedA = await startStub((r) => json(r.res, 429, { error: { message: 'slow down' } }, { 'retry-after': '7' }));
  const limitedB = await startStub((r) => json(r.res, 429, { error: { message: 'slow down too' } }, { 'retry-after': '9' }));
  const good = await startStub();
  // The picker's order is limitedA (idle), then the one with two queued.
  limitedB.metrics = queuedMetrics(2);
  good.metrics = queuedMetrics(2);
  const gateways: Gateway[] = [];
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([limitedA.close(), limitedB.close(), good.close()]);
  });

  test('moves on to another endpoint; the client never sees the 429', async () => {
    const { gw } = await gatewayFor(poolAndModel([limitedA.url, good.url]));
    gateways.push(gw);
    const before = limitedA.requests.length;
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['retry-after'], undefined);
    assert.equal(((await r.body.json()) as { echo: { model: string } }).echo.model, 'm');
    assert.equal(limitedA.requests.length, before + 1, 'the 429 endpoint was tried first');
    assert.equal(good.requests.length, 1);
    // A 429 is an answer: the endpoint stays in the pool.
    assert.equal((await poolView(gw)).endpoints.find((e) => e.url === limitedA.url)!.healthy, true);
  });

  test('when the last endpoint answers 429 too, its answer passes through with its retry-after', async () => {
    const { gw } = await gatewayFor(poolAndModel([limitedA.url, limitedB.url]));
    gateways.push(gw);
    const [a, b] = [limitedA.requests.length, limitedB.requests.length];
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '9');
    assert.deepEqual(await r.body.json(), { error: { message: 'slow down too' } });
    assert.deepEqual([limitedA.requests.length - a, limitedB.requests.length - b], [1, 1]);
  });
});

describe('whole-response timeout (upstream.responseTimeout, InferenceModel timeouts.response)', async () => {
  let release: () => void = () => {};
  const stub = await startStub(async ({ body, res }) => {
    if (body?.model === 'patient') {
      // Longer than the gateway-wide deadline, well within the model's own.
      await sleep(1000);
      json(res, 200, { patient: true });
    } else if (body?.trickle === true) {
      // Never idle for long, never finished: only the whole-response deadline ends it.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write('data: {"choices":[{"delta":{"content":"more"}}]}\n\n'), 50);
      res.on('close', () => clearInterval(timer));
    } else if (body?.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"first"}}]}\n\n');
      await new Promise<void>((r) => (release = r)); // stalls until the test ends
    }
    // Otherwise: never answers.
  });
  const { gw, lines } = await gatewayFor([
    ...poolAndModel([stub.url]),
    manifest('InferenceModel', 'patient', { modelName: 'patient', poolRef: { name: 'pool' }, timeouts: { response: '20s' } }),
    settings({ upstream: { responseTimeout: '400ms' } }),
  ]);
  after(async () => {
    release();
    await gw.close();
    await stub.close();
  });

  test('a non-streaming answer not complete in time → 504 upstream_timeout, OpenAI shape', BOUNDED, async () => {
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 504);
    const body = (await r.body.json()) as { error: { message: string; type: string; code: string } };
    assert.equal(body.error.code, 'upstream_timeout');
    assert.equal(body.error.type, 'server_error');
    assert.equal(typeof body.error.message, 'string');
    assert.ok(r.headers['x-request-id']);
  });

  test('a stream that stalls after its first chunk ends with an SSE error event, and is recorded with its code', BOUNDED, async () => {
    const r = await post(gw, { ...CHAT, stream: true }, { 'x-request-id': 'stalled-stream' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    const text = await r.body.text();
    assert.match(text, /^data: \{"choices":\[\{"delta":\{"content":"first"\}\}\]\}\n\n/);
    const last = text.trimEnd().split('\n\n').at(-1)!;
    assert.match(last, /^data: /);
    const event = JSON.parse(last.slice(6)) as { error: { code: string; type: string; message: string } };
    assert.equal(event.error.code, 'upstream_timeout');
    assert.equal(event.error.type, 'server_error');
    // Before: the access log (and the usage record, and the error metric) said upstream_error.
    await waitFor(() => lines.some((l) => l.msg === 'request' && l.requestId === 'stalled-stream'), 5000, 'the access log line');
    const line = lines.find((l) => l.msg === 'request' && l.requestId === 'stalled-stream')!;
    assert.deepEqual([line.status, line.errorCode], [200, 'upstream_timeout']);
  });

  test('a stream that trickles on past the deadline is cut there too', BOUNDED, async () => {
    const r = await post(gw, { ...CHAT, stream: true, trickle: true });
    assert.equal(r.statusCode, 200);
    const events = (await r.body.text()).trimEnd().split('\n\n');
    assert.ok(events.length > 2, `several chunks before the cut: ${events.length}`);
    assert.equal((JSON.parse(events.at(-1)!.slice(6)) as { error: { code: string } }).error.code, 'upstream_timeout');
  });

  test("the model's own, longer timeout lets its answer through", BOUNDED, async () => {
    const r = await post(gw, { ...CHAT, model: 'patient' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(await r.body.json(), { patient: true });
  });

  test('the deadline does not take the endpoint out', async () => {
    const r = await post(gw, { ...CHAT, model: 'patient' });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal((await poolView(gw)).endpoints[0].healthy, true);
  });
});

describe('first-byte timeout (upstream.firstByteTimeout)', async () => {
  const stub = await startStub(silent);
  const { gw } = await gatewayFor([...poolAndModel([stub.url]), settings({ upstream: { firstByteTimeout: '300ms' } })]);
  after(async () => {
    await gw.close();
    await stub.close();
  });

  test('a server that never sends a stream\'s headers → 504 upstream_timeout, and again on the next request', BOUNDED, async () => {
    for (let i = 0; i < 2; i++) {
      const r = await post(gw, { ...CHAT, stream: true });
      // 503 no_healthy_endpoints the second time would mean our own deadline took the endpoint out.
      assert.equal(r.statusCode, 504);
      const body = (await r.body.json()) as { error: { code: string; type: string } };
      assert.deepEqual([body.error.code, body.error.type], ['upstream_timeout', 'server_error']);
    }
    assert.equal(stub.requests.length, 2);
  });
});

describe('a client that hangs up before anything was sent', async () => {
  // Headers at once, the body only later: tollgate holds the head until the first body byte.
  const stub = await startStub(async ({ res }) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    await sleep(400);
    res.end('{"late":true}');
  });
  const { gw, lines } = await gatewayFor(poolAndModel([stub.url]));
  after(async () => {
    await gw.close();
    await stub.close();
  });

  test('is recorded as client_closed with no status (before: the model server\'s 200, which it never got)', BOUNDED, async () => {
    const client = new AbortController();
    const pending = request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'gone-before-head' },
      body: JSON.stringify(CHAT),
      signal: client.signal,
    }).catch((err: unknown) => err);
    await waitFor(() => stub.requests.length === 1, 5000, 'the request upstream', 10);
    await sleep(150);
    client.abort();
    assert.ok((await pending) instanceof Error, 'the client got nothing');
    await waitFor(() => lines.some((l) => l.msg === 'request' && l.requestId === 'gone-before-head'), 5000, 'the access log line', 20);
    const line = lines.find((l) => l.msg === 'request' && l.requestId === 'gone-before-head')! as AccessLine & { errorCode?: string };
    assert.equal(line.errorCode, 'client_closed');
    assert.equal(line.status, undefined);
  });
});

describe('admin /readyz over HTTP', async () => {
  const live = await startStub();
  const darkPort = await freePort();
  const darkUrl = `http://127.0.0.1:${darkPort}`;
  let dark: Stub | undefined;
  const { gw } = await gatewayFor([
    ...poolAndModel([live.url]),
    manifest('InferencePool', 'dark', { endpoints: [darkUrl] }),
    manifest('InferenceModel', 'dm', { modelName: 'dm', poolRef: { name: 'dark' } }),
  ]);
  after(async () => {
    await gw.close();
    await live.close();
    await dark?.close();
  });

  const readyz = async () => {
    const r = await request(`${gw.adminUrl}/readyz`);
    return { status: r.statusCode, body: (await r.body.json()) as { ready: boolean; listening: boolean; poolsNotReady: string[] } };
  };

  test('503 naming the pool without a reachable endpoint, then 200 once one is reachable', BOUNDED, async () => {
    const before = await readyz();
    assert.equal(before.status, 503);
    assert.equal(before.body.ready, false);
    assert.equal(before.body.listening, true);
    assert.deepEqual(before.body.poolsNotReady, ['dark']);
    const refused = await post(gw, { ...CHAT, model: 'dm' });
    assert.equal(refused.statusCode, 503);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'no_healthy_endpoints');

    dark = await startStub(undefined, darkPort);
    await waitFor(async () => (await readyz()).status === 200, 10_000, '/readyz to turn 200', 50);
    const now = await readyz();
    assert.deepEqual(now.body, { ready: true, listening: true, configLoaded: true, policiesBuilt: true, poolsNotReady: [], lastReload: null, loading: [] });
    const served = await post(gw, { ...CHAT, model: 'dm' });
    assert.equal(served.statusCode, 200);
    assert.equal(((await served.body.json()) as { echo: { model: string } }).echo.model, 'dm');
  });
});

describe('backpressure', async () => {
  const TOTAL = 96 * 1024 * 1024;
  const EVENT = `data: {"choices":[{"delta":{"content":"${'x'.repeat(1000)}"}}]}\n\n`;
  const CHUNK = Buffer.from(EVENT.repeat(64));
  const DONE = 'data: [DONE]\n\n';
  const upstream = { written: 0, waitingDrain: false, drains: 0, finished: false };
  const stub = await startStub(async ({ res }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    while (upstream.written < TOTAL && !res.destroyed) {
      const ok = res.write(CHUNK);
      upstream.written += CHUNK.length;
      if (!ok) {
        upstream.waitingDrain = true;
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off('drain', go);
            res.off('close', go);
            resolve();
          };
          res.on('drain', go);
          res.on('close', go);
        });
        upstream.waitingDrain = false;
        upstream.drains++;
      }
    }
    res.end(DONE, () => (upstream.finished = true));
  });
  const { gw } = await gatewayFor(poolAndModel([stub.url]));
  after(async () => {
    await gw.close();
    await stub.close();
  });

  test('a client that does not read holds the model server back; reading lets it finish', BOUNDED, async () => {
    const r = await post(gw, { ...CHAT, stream: true });
    assert.equal(r.statusCode, 200);
    // The client reads nothing: the buffers on the way fill (the kernel's grow for a while) and the model server's
    // writes stop: it waits for 'drain' with the same count over successive looks.
    let seen = -1;
    await waitFor(
      () => {
        const stalled = upstream.waitingDrain && upstream.written === seen;
        seen = upstream.written;
        return stalled;
      },
      10_000,
      'the model server to be held back',
      250,
    );
    await sleep(1000);
    assert.equal(upstream.waitingDrain, true, 'the model server is still held back');
    assert.equal(upstream.written, seen, 'it wrote on while the client read nothing');
    assert.ok(upstream.written < TOTAL / 2, `the model server wrote ${upstream.written} of ${TOTAL} bytes while the client read nothing`);

    let received = 0;
    let tail = '';
    for await (const chunk of r.body) {
      received += (chunk as Buffer).length;
      tail = (tail + (chunk as Buffer).toString('latin1')).slice(-DONE.length);
    }
    await waitFor(() => upstream.finished, 5000, 'the model server to finish');
    assert.ok(upstream.written >= TOTAL);
    assert.equal(received, upstream.written + DONE.length, 'every byte arrived');
    assert.equal(tail, DONE);
    assert.ok(upstream.drains > 0);
  });
});

describe('priority and fairness headers', async () => {
  const stub = await startStub();
  const { gw } = await gatewayFor([
    manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
    ...['m', 'ma', 'mb'].map((name) => manifest('InferenceModel', name, { modelName: name, poolRef: { name: 'pool' } })),
    manifest('InferenceObjective', 'batch', { priority: -1, poolRef: { name: 'pool' } }),
    manifest('InferenceObjective', 'urgent', { priority: 5, poolRef: { name: 'pool' } }),
  ]);
  after(async () => {
    stub.metrics = IDLE_METRICS; // lets anything still queued go
    await gw.close();
    await stub.close();
  });

  /** Ten waiting requests on the only endpoint: above the default queue-depth threshold (5), the pool is saturated. */
  const saturate = async (on: boolean) => {
    stub.metrics = on ? queuedMetrics(10) : IDLE_METRICS;
    await waitFor(async () => (await poolView(gw)).saturated === on, 10_000, `the pool to show saturated=${on}`, 20);
  };
  const queueLength = async (n: number) => waitFor(async () => (await poolView(gw)).queueLength === n, 10_000, `${n} queued`, 20);

  test('an InferenceObjective named by x-gateway-inference-objective sets the priority the picker sees', async () => {
    for (const [objective, priority] of [['urgent', 5], ['batch', -1], ['no-such-objective', 0]] as const) {
      const r = await post(gw, CHAT, { 'x-gateway-inference-objective': objective });
      assert.equal(r.statusCode, 200);
      // Tollgate's routing header is not sent upstream.
      assert.equal(stub.requests.at(-1)!.req.headers['x-gateway-inference-objective'], undefined);
      await r.body.dump();
      assert.equal((await poolView(gw)).decisions[0].priority, priority, objective);
    }
  });

  test('saturated: the sheddable objective gets 429 with retry-after while a standard request waits, then is served', BOUNDED, async () => {
    await saturate(true);
    const standard = post(gw, { ...CHAT, messages: [{ role: 'user', content: 'standard' }] });
    await queueLength(1);

    const shed = await post(gw, CHAT, { 'x-gateway-inference-objective': 'batch' });
    assert.equal(shed.statusCode, 429);
    assert.equal(shed.headers['retry-after'], '1');
    const body = (await shed.body.json()) as { error: { code: string; type: string } };
    assert.deepEqual([body.error.code, body.error.type], ['request_shed', 'rate_limit_error']);
    const view = await poolView(gw);
    assert.deepEqual(view.queueByPriority, [{ priority: 0, length: 1 }], 'the shed request did not queue');

    await saturate(false);
    const served = await standard;
    assert.equal(served.statusCode, 200);
    assert.equal(((await served.body.json()) as { echo: { messages: { content: string }[] } }).echo.messages[0].content, 'standard');
    assert.equal((await poolView(gw)).decisions[0].priority, 0);
  });

  /** Queues three requests for model ma then one for mb (each queued before the next is sent), lets them go, and answers the models in dispatch order. */
  async function dispatchOrder(fairness: [string, string] | null): Promise<string[]> {
    await saturate(true);
    const sent: Promise<Awaited<ReturnType<typeof post>>>[] = [];
    const plan = [['ma', 0], ['ma', 0], ['ma', 0], ['mb', 1]] as const;
    for (const [i, [model, tenant]] of plan.entries()) {
      const headers: Record<string, string> = fairness ? { 'x-gateway-inference-fairness-id': fairness[tenant] } : {};
      sent.push(post(gw, { model, messages: [{ role: 'user', content: `request ${i}` }] }, headers));
      await queueLength(i + 1);
    }
    await saturate(false);
    for (const r of await Promise.all(sent)) {
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    assert.equal(stub.requests.at(-1)!.req.headers['x-gateway-inference-fairness-id'], undefined, 'not sent upstream');
    return (await poolView(gw)).decisions.slice(0, plan.length).reverse().map((d) => d.model);
  }

  test('without fairness ids the queue is first come, first served', BOUNDED, async () => {
    assert.deepEqual(await dispatchOrder(null), ['ma', 'ma', 'ma', 'mb']);
  });

  test('x-gateway-inference-fairness-id reaches the queue: tenants take turns', BOUNDED, async () => {
    assert.deepEqual(await dispatchOrder(['tenant-a', 'tenant-b']), ['ma', 'mb', 'ma', 'ma']);
  });
});

describe('fairness with API keys', async () => {
  const stub = await startStub();
  const { gw } = await gatewayFor([
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto' }),
    manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['ma', 'mb'] } }),
    manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
    ...['ma', 'mb'].map((name) => manifest('InferenceModel', name, { modelName: name, poolRef: { name: 'pool' } })),
  ]);
  after(async () => {
    stub.metrics = IDLE_METRICS;
    await gw.close();
    await stub.close();
  });

  test('the tenant is the caller\'s app: a client sending a new fairness id with each request still takes one turn', BOUNDED, async () => {
    const [a, b] = [await createApp(gw.adminUrl, ['gold'], 'rotating'), await createApp(gw.adminUrl, ['gold'], 'honest')];
    await untilKeyKnown(gw.url, a.key);
    await untilKeyKnown(gw.url, b.key);
    stub.metrics = queuedMetrics(10);
    await waitFor(async () => (await poolView(gw)).saturated, 10_000, 'the pool to show saturated', 20);
    const plan = [['ma', a, 'id-1'], ['ma', a, 'id-2'], ['ma', a, 'id-3'], ['mb', b, 'same']] as const;
    const sent = [];
    for (const [i, [model, app, id]] of plan.entries()) {
      sent.push(post(gw, { model, messages: [{ role: 'user', content: `request ${i}` }] }, { authorization: `Bearer ${app.key}`, 'x-gateway-inference-fairness-id': id }));
      await waitFor(async () => (await poolView(gw)).queueLength === i + 1, 10_000, `${i + 1} queued`, 20);
    }
    stub.metrics = IDLE_METRICS;
    for (const r of await Promise.all(sent)) {
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    // Before: every new id was a tenant of its own, so the rotating app went three times before the other once.
    assert.deepEqual((await poolView(gw)).decisions.slice(0, 4).reverse().map((d) => d.model), ['ma', 'mb', 'ma', 'ma']);
  });
});

describe('fairness with API keys on some requests only', async () => {
  // A keyed tier beside an anonymous one: VerifyAPIKey runs only for requests that carry a key.
  const stub = await startStub();
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  const { gw } = await gatewayFor([
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs: ext }),
    manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['ma', 'mb'] } }),
    manifest('VerifyAPIKey', 'vk', {}),
    manifest('ApimTemplate', 'keyed', { templates: [{ condition: "'x-api-key' in request.headers", policies: [{ kind: 'VerifyAPIKey', name: 'vk' }] }] }),
    manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
    ...['ma', 'mb'].map((name) => manifest('InferenceModel', name, { modelName: name, poolRef: { name: 'pool' } })),
  ]);
  after(async () => {
    stub.metrics = IDLE_METRICS;
    await gw.close();
    await stub.close();
  });

  test("an anonymous client naming an app's tenant id in x-gateway-inference-fairness-id does not join that app's turns", BOUNDED, async () => {
    const app = await createApp(gw.adminUrl, ['gold'], 'keyed');
    await untilKeyKnown(gw.url, app.key);
    stub.metrics = queuedMetrics(10);
    await waitFor(async () => (await poolView(gw)).saturated, 10_000, 'the pool to show saturated', 20);
    const plan = [['ma', { 'x-gateway-inference-fairness-id': `app:${app.appId}` }], ['ma', { 'x-gateway-inference-fairness-id': `app:${app.appId}` }], ['ma', { 'x-gateway-inference-fairness-id': `app:${app.appId}` }], ['mb', { 'x-api-key': app.key }]] as const;
    const sent = [];
    for (const [i, [model, headers]] of plan.entries()) {
      sent.push(post(gw, { model, messages: [{ role: 'user', content: `request ${i}` }] }, headers));
      await waitFor(async () => (await poolView(gw)).queueLength === i + 1, 10_000, `${i + 1} queued`, 20);
    }
    stub.metrics = IDLE_METRICS;
    for (const r of await Promise.all(sent)) {
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    // Before: one tenant, served in arrival order, so the app waited behind all three.
    assert.deepEqual((await poolView(gw)).decisions.slice(0, 4).reverse().map((d) => d.model), ['ma', 'mb', 'ma', 'ma']);
  });
});
