// Hot reload from watched files: a valid change applies without dropping in-flight requests;
// an invalid change is logged and the last good configuration stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { request } from 'undici';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { IDLE_METRICS, json, sleep, startStub } from './helpers/stub-upstream.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { createApp } from './helpers/apim-admin.js';
import { untilEndpoints } from './helpers/pool-ready.js';

test('hot reload', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-'));
  const stub = await startStub(async (r) => {
    if (r.body?.slow) await sleep(600);
    json(r.res, 200, { model: r.body?.model });
  });
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'first', 'model'));
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger });
  after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = (model: string, extra = {}) =>
    request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], ...extra }) });

  // A slow request is in flight while the configuration changes under it.
  const inflight = ask('first', { slow: true });
  await waitFor(() => stub.requests.some((r) => r.body?.slow), 5000, 'the slow request to reach the model server');
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'second', 'model'));
  await waitFor(async () => (await ask('second')).statusCode === 200, 5000, 'the reloaded model to answer', 50);
  const slow = await inflight;
  assert.equal(slow.statusCode, 200);
  assert.deepEqual(await slow.body.json(), { model: 'first' });
  assert.equal((await ask('first')).statusCode, 404);

  // An invalid change: logged, and 'second' keeps working.
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'third', 'model').replace('modelName', 'modelNme'));
  await waitFor(() => logs.some((l) => l.msg?.includes('configuration change rejected')), 5000, 'the rejection to be logged', 50);
  const rejected = logs.find((l) => l.msg?.includes('configuration change rejected'));
  assert.match(rejected.problems[0], /config\.yaml document 1 \(InferenceModel\/model\): spec/);
  assert.equal((await ask('second')).statusCode, 200);
  assert.equal((await ask('third')).statusCode, 404);

  // A file caught between its truncation and its new content: refused, not a configuration without models.
  writeFileSync(join(dir, 'config.yaml'), '');
  await waitFor(() => logs.some((l) => l.problems?.some((p: string) => /held manifests and now holds none/.test(p))), 5000, 'the empty file refused', 50);
  assert.equal((await ask('second')).statusCode, 200);
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'fourth', 'model'));
  await waitFor(async () => (await ask('fourth')).statusCode === 200, 5000, 'the written file to apply', 50);
});

/** A model server that counts its scrapes and reports `waiting` queued requests. */
async function countingServer(waiting: number) {
  /** `hang`: /metrics stops answering (an endpoint whose metrics go stale). */
  const state = { scrapes: 0, hang: false };
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      state.scrapes++;
      if (state.hang) return;
      res.end(`vllm:num_requests_waiting ${waiting}\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc 0\n`);
      return;
    }
    req.resume().on('end', () => json(res, 200, { ok: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

function settingsYaml(spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: settings }\nspec: ${spec}\n`;
}

/** One keep-alive request; resolves with the answer once the server closes the idle connection, rejects if it stays open 5 s. */
function idleClose(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    // A loopback Host: without a token the admin port answers no other name.
    const sock = connect(port, '127.0.0.1', () => sock.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('the idle connection is still open after 5 s'));
    }, 5000);
    sock.on('data', (d) => (data += d));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    sock.on('error', reject);
  });
}

test('a reload applies the runtime settings: scraping, staleness, saturation, flow control, listener timeouts, log level', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-settings-'));
  const server = await countingServer(3);
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const models = `${poolAndModelYaml(server.url, 'standard', 'model')}---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: sheddable }
spec: { modelName: sheddable, criticality: Sheddable, poolRef: { name: pool } }
`;
  writeFileSync(join(dir, 'models.yaml'), models);
  const write = (spec: string) => writeFileSync(join(dir, 'settings.yaml'), settingsYaml(spec));
  // Everything slow or loose at first: a scrape a minute, long timeouts, a queue depth of 3 is room.
  write(`{ server: { keepAliveTimeout: 1m }, scheduler: { scrapeInterval: 1m, staleAfter: 10m, saturation: { metricsFreshness: 10m } }, logging: { level: warn } }`);
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger, logLevelFromSettings: true });
  after(async () => {
    await gw.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = async (model: string) => {
    const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }) });
    const body = (await r.body.json()) as any;
    return { status: r.statusCode, code: body.error?.code };
  };

  assert.equal(gw.logger.level, 'warn');
  assert.equal((await ask('sheddable')).status, 200);
  const scrapes = server.state.scrapes;
  await sleep(300);
  assert.equal(server.state.scrapes, scrapes, 'no scrape within a minute');

  write(`{ server: { keepAliveTimeout: 200ms }, scheduler: { scrapeInterval: 20ms, staleAfter: 10m,
    saturation: { queueDepthThreshold: 1, metricsFreshness: 10m }, flowControl: { maxQueueLength: 5, maxWait: 300ms } }, logging: { level: debug } }`);
  await waitFor(() => gw.config.settings.logging.level === 'debug', 5000, 'the reload', 20);
  assert.equal(gw.logger.level, 'debug');
  assert.ok(logs.some((l) => l.msg === 'configuration reloaded'), 'info lines are logged at debug level');
  assert.ok(!logs.some((l) => /restart/.test(l.msg)), 'nothing here waits for a restart');
  // Scrape interval: the next scrapes come now, not a minute after the last.
  await waitFor(() => server.state.scrapes >= scrapes + 5, 5000, 'scrapes at the new interval', 20);
  // Saturation threshold: 3 queued is above 1, so the pool is saturated; flow control: standard requests wait
  // at most 300 ms, sheddable ones are refused.
  assert.deepEqual(await ask('sheddable'), { status: 429, code: 'request_shed' });
  assert.deepEqual(await ask('standard'), { status: 503, code: 'queue_timeout' });
  // Listener timeouts on the open listeners: idle keep-alive connections close after 200 ms, not a minute.
  assert.match(await idleClose(gw.port), /^HTTP\/1\.1 404/);
  assert.match(await idleClose(gw.adminPort), /^HTTP\/1\.1 200/);

  // Staleness: metrics older than 50 ms make the endpoint ineligible (its scrapes go unanswered from now). The spool
  // directory changes only at a restart: a warning names it (and nothing else).
  server.state.hang = true;
  write(`{ scheduler: { scrapeInterval: 25ms, staleAfter: 50ms }, analytics: { directory: ${join(dir, 'elsewhere')} },
    tracing: { sampleRatio: 0.5 }, logging: { level: debug } }`);
  await waitFor(() => gw.config.settings.scheduler.staleAfter === 50, 5000, 'the reload', 20);
  await untilEndpoints(gw, (e) => e.status !== 'ready');
  assert.deepEqual(await ask('standard'), { status: 503, code: 'no_healthy_endpoints' });
  const warning = logs.find((l) => /restart/.test(l.msg));
  assert.equal(warning?.level, 40);
  assert.deepEqual(warning.fields, ['analytics.directory']);
});

test('a reload turns tracing on, changes it, and turns it off; a request in flight keeps the tracer it started with', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-tracing-'));
  const receiver = await startOtlpReceiver();
  const endpoint = receiver.endpoint;
  const stub = await startStub(async (r) => {
    if (r.body?.slow) await sleep(400);
    json(r.res, 200, { ok: true });
  });
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url, 'm', 'model'));
  const write = (spec: string) => writeFileSync(join(dir, 'settings.yaml'), settingsYaml(spec));
  write('{ logging: { accessLog: false } }');
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1' });
  after(async () => {
    await gw.close();
    await stub.close();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  /** A request under a trace id of its own; its spans are found by that id. */
  const traced = async (extra = {}) => {
    const traceId = (++n).toString(16).padStart(32, 'a');
    const r = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...extra }),
    });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    return traceId;
  };
  const exported = (traceId: string) => receiver.spans().filter((s) => s.traceId === traceId);

  const before = await traced();
  write(`{ logging: { accessLog: false }, tracing: { endpoint: "${endpoint}", exportInterval: 20ms, serviceName: first } }`);
  await waitFor(() => gw.config.settings.tracing.endpoint === endpoint, 5000, 'tracing on', 20);
  const on = await traced();
  await waitFor(() => exported(on).length >= 3, 5000, 'the spans of a request traced after the reload', 20);
  assert.equal(exported(before).length, 0, 'nothing was traced before');

  // A new service name: requests after the reload are exported under it.
  write(`{ logging: { accessLog: false }, tracing: { endpoint: "${endpoint}", exportInterval: 20ms, serviceName: second } }`);
  await waitFor(() => gw.config.settings.tracing.serviceName === 'second', 5000, 'the new service name', 20);
  const renamed = await traced();
  await waitFor(() => exported(renamed).length >= 3, 5000, 'the renamed request\'s spans', 20);
  const serviceOf = (traceId: string) => [...new Set(receiver.exports.filter((e) => e.spans.some((s) => s.traceId === traceId)).map((e) => e.serviceName))];
  assert.deepEqual(serviceOf(on), ['first']);
  assert.deepEqual(serviceOf(renamed), ['second']);

  // Tracing turned off while a slow request is in flight: that request still ends its spans with the tracer it
  // started with, and they are exported; requests after the reload are not traced.
  const slow = traced({ slow: true });
  await waitFor(() => stub.requests.some((r) => r.body?.slow), 5000, 'the slow request to reach the model server', 10);
  write('{ logging: { accessLog: false } }');
  await waitFor(() => gw.config.settings.tracing.endpoint === undefined, 5000, 'tracing off', 20);
  const slowId = await slow;
  const off = await traced();
  await waitFor(() => exported(slowId).some((s) => s.name === 'POST /v1/chat/completions'), 5000, 'the in-flight request\'s server span', 20);
  assert.deepEqual(serviceOf(slowId), ['second']);
  await sleep(200);
  assert.equal(exported(off).length, 0, 'nothing is traced once tracing is off');
});

test('API management from files: a reload that drops the APIMExtensionPolicy is refused; a product out of the files for a while keeps its subscribers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-apim-'));
  const stub = await startStub();
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  type Doc = { kind: string; metadata: { name: string }; spec: unknown };
  const docs = (...ds: Doc[]) => ds.map((d) => JSON.stringify({ apiVersion: 'apim.googleapis.com/v1', ...d })).join('\n---\n');
  const extension: Doc = { kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } } };
  const product = (name: string): Doc[] => [
    { kind: 'APIProduct', metadata: { name }, spec: { displayName: name } },
    { kind: 'APIOperationSet', metadata: { name: `${name}-ops` }, spec: { apiProductRefs: [{ name }] } },
  ];
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url, 'm', 'model'));
  writeFileSync(join(dir, 'apim.yaml'), docs(extension, ...product('starter')));
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger });
  after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = async (key?: string) => {
    const r = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: key ? { 'x-api-key': key } : {},
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    });
    await r.body.dump();
    return r.statusCode;
  };
  const app = await createApp(gw.adminUrl, ['starter'], 'reload');
  assert.equal(await ask(app.key), 200);

  // The file being rewritten: gone for a moment. Before, requests without a key got 200 meanwhile.
  const rejections = () => logs.filter((l) => l.msg?.includes('configuration change rejected')).length;
  rmSync(join(dir, 'apim.yaml'));
  await waitFor(() => rejections() === 1, 5000, 'the reload without the extension refused', 20);
  assert.match(logs.find((l) => l.msg?.includes('configuration change rejected')).problems[0], /APIMExtensionPolicy\/ext: no longer in the configuration files/);
  assert.equal(await ask(), 401);
  assert.equal(await ask(app.key), 200);

  // Back without the product: its subscribers are refused; with it again, they are served again (before: their
  // grants went with the product, for good).
  writeFileSync(join(dir, 'apim.yaml'), docs(extension, ...product('other')));
  await waitFor(async () => (await ask(app.key)) === 401, 5000, 'the product gone', 20);
  writeFileSync(join(dir, 'apim.yaml'), docs(extension, ...product('other'), ...product('starter')));
  await waitFor(async () => (await ask(app.key)) === 200, 5000, 'the product back, with its subscribers', 20);
});

test('raising server.maxBodyBytes past what the open ext_proc listener takes is reported as waiting for a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-extproc-'));
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml('http://127.0.0.1:9'));
  const write = (bytes: number) => writeFileSync(join(dir, 'settings.yaml'), settingsYaml(`{ server: { maxBodyBytes: ${bytes} } }`));
  write(10 * 1024 * 1024);
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger, watch: false, extprocPort: 0 });
  t.after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // The listener opened with a 64 MiB message limit: bodies up to 32 MiB pass it, a larger limit would not over gRPC.
  write(20 * 1024 * 1024);
  assert.equal(await gw.reload(), true);
  assert.ok(!logs.some((l) => /restart/.test(l.msg)));
  write(100 * 1024 * 1024);
  assert.equal(await gw.reload(), true);
  const warning = logs.find((l) => /restart/.test(l.msg));
  assert.deepEqual(warning?.fields, ['server.maxBodyBytes (over ext_proc)']);
});

test('analytics.enabled turned off by a reload (restart required) stays on everywhere until the restart: streams still ask for their usage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-analytics-'));
  const stub = await startStub();
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url));
  // Without the per-request metrics, the usage records are what a stream's usage is asked for.
  const write = (analytics: boolean) => writeFileSync(join(dir, 'settings.yaml'), settingsYaml(`{ metrics: { requests: false }, analytics: { enabled: ${analytics} } }`));
  write(true);
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger, watch: false });
  t.after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const usageAsked = async () => {
    const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    await r.body.dump();
    return stub.requests.at(-1)!.body.stream_options?.include_usage === true;
  };
  assert.equal(await usageAsked(), true);
  write(false);
  assert.equal(await gw.reload(), true);
  assert.deepEqual(logs.find((l) => /restart/.test(l.msg))?.fields, ['analytics.enabled']);
  assert.ok(gw.analytics, 'the pipeline still records');
  assert.equal(gw.config.settings.analytics.enabled, true);
  // Before: not asked, so the records still written had no tokens (what billing reads).
  assert.equal(await usageAsked(), true);
});

test('a change written to --config while serve is starting applies once it has started', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-start-'));
  // The start waits for a first scrape round: a slow /metrics holds it there while the file changes.
  let scraped!: () => void;
  const scraping = new Promise<void>((resolve) => (scraped = resolve));
  const stub = await startStub();
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    scraped();
    setTimeout(() => res.end(IDLE_METRICS), 300);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const slowMetrics = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = join(dir, 'config.yaml');
  const config = (...models: string[]) =>
    `${poolAndModelYaml(stub.url)}---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: slow }
spec: { endpoints: ["${slowMetrics}"] }
${models.map((m) => `---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: { name: ${m} }\nspec: { modelName: ${m}, poolRef: { name: pool } }\n`).join('')}`;
  writeFileSync(file, config());
  const starting = startGateway({ configPaths: [file], port: 0, adminPort: 0, host: '127.0.0.1' });
  await scraping;
  writeFileSync(file, config('m2'));
  const gw = await starting;
  t.after(async () => {
    await gw.close();
    await stub.close();
    await new Promise((resolve) => server.close(resolve).closeAllConnections());
    rmSync(dir, { recursive: true, force: true });
  });
  assert.ok(!gw.config.models.has('m2'), 'read before the change');
  // Before: never, until some later change (the watch took the changed file for what was running).
  await waitFor(() => gw.config.models.has('m2'), 3000, 'the change made during the start', 20);
});
