import { test, describe } from 'node:test';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { EndpointState } from './endpoint-state.js';
import { HttpMetricsSource, MAX_PAGE_BYTES, type MetricsPage } from './metrics-source.js';
import { Scheduler } from './scheduler.js';
import { Scraper } from './scraper.js';
import { waitFor } from '../sim/testing.js';
import { SETTINGS, captureLogger, fakeMetricsServer, pool, request, sleep, vllmPage, type FakeMetricsServer } from './testing.js';
import type { SchedulerSettings } from './plugin-types.js';

async function withServers(n: number, run: (servers: FakeMetricsServer[]) => Promise<void>): Promise<void> {
  const servers = await Promise.all(Array.from({ length: n }, () => fakeMetricsServer()));
  try {
    await run(servers);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

function schedulerFor(servers: FakeMetricsServer[], settings: Partial<SchedulerSettings>) {
  const { logger, lines } = captureLogger();
  const scheduler = new Scheduler({ settings: { ...SETTINGS, ...settings }, logger });
  const p = pool('p', servers.map((s) => s.url));
  scheduler.update(new Map([['p', p]]));
  return { scheduler, pool: p, logs: lines };
}

describe('scraping over HTTP', () => {
  test("each engine's context length is read from its /v1/models once in a while; the pool's is the smallest known", async () => {
    await withServers(3, async (servers) => {
      servers[0].models = JSON.stringify({ object: 'list', data: [{ id: 'base', max_model_len: 4096 }, { id: 'lora', max_model_len: 4096 }] });
      servers[1].models = JSON.stringify({ object: 'list', data: [{ id: 'base', max_model_len: 2048 }] });
      // servers[2] has no /v1/models (404): no context length, and its metrics still count.
      // A 100 ms interval gives a 500 ms scrape deadline, which a loaded test machine meets (a 404 must not become a timeout).
      const { scheduler, logs } = schedulerFor(servers, { scrapeInterval: 100 });
      assert.equal(scheduler.contextWindow('p'), undefined, 'nothing known before the first scrape');
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready') && scheduler.contextWindow('p') === 2048, 3000);
        await waitFor(() => servers[0].hits > 3, 5000, 'several scrapes');
        assert.equal(servers[0].modelsHits, 1, 'read once, not at every scrape');
        // The one without a model list is told once (a vLLM with --api-key answers 401 there for good).
        const unknown = logs.filter((l) => String(l.msg).startsWith('context length unknown'));
        assert.deepEqual(unknown.map((l) => l.endpoint), [servers[2].address]);
        assert.match(String(unknown[0].reason), /404/);
        assert.equal(scheduler.contextWindow('unknown'), undefined);
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('a model list that failed before any read worked is asked again within seconds, not a minute later', async () => {
    await withServers(1, async (servers) => {
      const { scheduler } = schedulerFor(servers, { scrapeInterval: 100 });
      scheduler.start();
      try {
        // The first read fails (404 here; a timeout while the gateway starts under load did the same), then it answers.
        await waitFor(() => servers[0].modelsHits >= 1, 3000, 'the first model-list read');
        servers[0].models = JSON.stringify({ object: 'list', data: [{ id: 'base', max_model_len: 8192 }] });
        // Before: not asked again for MODELS_REFRESH_MS (60 s), the context length unknown all that while.
        await waitFor(() => scheduler.contextWindow('p') === 8192, 5000, 'the context length, read again');
        const hits = servers[0].modelsHits;
        await sleep(1500);
        assert.equal(servers[0].modelsHits, hits, 'once read, once a minute again');
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('scrapes at once on start, then every interval, one scrape at a time per endpoint', async () => {
    await withServers(2, async (servers) => {
      servers[0].serve(vllmPage({ waiting: 3, running: 1, kv: 0.5 }));
      servers[1].delayMs = 40; // slower than the interval: scrapes must not pile up
      const { scheduler } = schedulerFor(servers, { scrapeInterval: 10 });
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready'), 3000);
        assert.equal(scheduler.view('p')!.endpoints[0].metrics.waiting, 3);
        const [before0, before1] = [servers[0].hits, servers[1].hits];
        // Waited for, not counted in a window: a loaded test machine loses intervals.
        await waitFor(() => servers[0].hits - before0 >= 3 && servers[1].hits - before1 >= 3, 5000, 'scrapes every interval');
        assert.equal(servers[1].maxConcurrent, 1);
        const pick = await scheduler.pick(request(pool('p', []), {}));
        assert.equal(pick.endpoints.length, 2);
      } finally {
        await scheduler.stop();
      }
      const after = servers[0].hits;
      await sleep(100);
      // Five intervals and more; the one scrape that may have been on its way when stop() was called can land meanwhile.
      assert.ok(servers[0].hits <= after + 1, 'no scrapes after stop');
    });
  });

  test('stale, then unhealthy, then recovered — logged once each, and picked only when ready', async () => {
    await withServers(2, async (servers) => {
      // The scrape timeout is staleAfter here (min(max(250, 100), 250)), so each failed scrape outlasts staleAfter: the
      // first failure after the last success finds the endpoint stale, the third unhealthy, whatever the machine's load.
      const { scheduler, logs } = schedulerFor(servers, { scrapeInterval: 20, staleAfter: 250 });
      const ofServer1 = (from: number) => logs.slice(from).filter((l) => l.endpoint === servers[1].address && l.status !== undefined);
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready'), 5000);
        // A loaded machine may have had servers[1] flap already: only what follows counts.
        const mark = logs.length;
        servers[1].delayMs = 2000; // every scrape now times out, even one given the stalled-loop grace
        await waitFor(() => ofServer1(mark).some((l) => l.status === 'unhealthy'), 5000);
        assert.deepEqual(
          ofServer1(mark).map((l) => l.status),
          ['stale', 'unhealthy'],
        );
        await waitFor(() => scheduler.view('p')!.endpoints[0].status === 'ready', 5000, 'servers[0] ready');
        const pick = await scheduler.pick(request(pool('p', [])));
        assert.deepEqual(pick.endpoints.map((e) => e.address), [servers[0].address]);
        const down = logs.length;
        servers[1].delayMs = 0;
        await waitFor(() => ofServer1(down).some((l) => l.msg === 'endpoint recovered'), 5000);
        assert.deepEqual(ofServer1(down).map((l) => l.msg), ['endpoint recovered']);
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready'), 5000);
        assert.equal((await scheduler.pick(request(pool('p', [])))).endpoints.length, 2);
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('failing answers (non-200, wrong engine) make an endpoint unhealthy with the reason', async () => {
    await withServers(2, async (servers) => {
      servers[0].serve(500);
      servers[1].serve('sglang:num_queue_reqs 1');
      const { scheduler } = schedulerFor(servers, { scrapeInterval: 10 });
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'unhealthy'), 3000);
        const [a, b] = scheduler.view('p')!.endpoints;
        assert.match(a.lastError!, /answered 500/);
        assert.match(b.lastError!, /vllm:num_requests_waiting/);
        await assert.rejects(scheduler.pick(request(pool('p', []))) as Promise<unknown>, /no healthy endpoint/);
        assert.deepEqual(scheduler.ready(), [{ pool: 'p', reachable: false }]);
      } finally {
        await scheduler.stop();
      }
    });
  });

  test("a page past 4 MiB (a long-running vLLM's LoRA label sets) keeps its endpoint in the pool: load read, adapters unknown, told once", async () => {
    await withServers(1, async (servers) => {
      const old = (i: number) => `vllm:lora_requests_info{max_lora="1",running_lora_adapters="cold-${i}",waiting_lora_adapters=""} ${1.7e9 + i}`;
      const page = vllmPage({ waiting: 2, running: 1, extra: Array.from({ length: 45_000 }, (_, i) => old(i)).join('\n') });
      assert.ok(page.length > MAX_PAGE_BYTES);
      servers[0].serve(page);
      // A 1 s scrape deadline: a loaded machine reads 4 MiB over loopback in that.
      const { scheduler, logs } = schedulerFor(servers, { scrapeInterval: 200, staleAfter: 5000 });
      scheduler.start();
      try {
        await waitFor(() => servers[0].hits >= 3 && scheduler.view('p')!.endpoints[0].status === 'ready', 10_000, 'scrapes of the large page');
        const ep = scheduler.view('p')!.endpoints[0];
        // Before: every scrape failed ("answered more than 4194304 bytes") and the endpoint went unhealthy.
        assert.equal(ep.lastError, null);
        assert.deepEqual([ep.metrics.waiting, ep.metrics.running], [2, 1]);
        assert.equal(ep.metrics.lora, null, 'the line of now may be past the cut: not known');
        const told = logs.filter((l) => String(l.msg).startsWith('/metrics page over 4 MiB'));
        assert.deepEqual(told.map((l) => l.endpoint), [servers[0].address]);
        assert.equal(told[0].level, 40);
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('a base model served under a second name (its /v1/models card has no parent) is not taken for an adapter', async () => {
    await withServers(2, async (servers) => {
      // vLLM --served-model-name base alias --enable-lora --max-loras 1: metrics carry model_name="base" only.
      const info = (running: string) => `vllm:lora_requests_info{max_lora="1",running_lora_adapters="${running}",waiting_lora_adapters=""} 1700000000`;
      servers[0].serve(vllmPage({ model: 'base', running: 1, extra: info('ad') })); // its one adapter slot taken
      servers[1].serve(vllmPage({ model: 'base', running: 3, extra: info('') })); // busier, a slot free
      const models = JSON.stringify({
        object: 'list',
        data: [
          { id: 'base', parent: null, max_model_len: 4096 },
          { id: 'alias', parent: null, max_model_len: 4096 },
          { id: 'ad', parent: 'base' },
        ],
      });
      for (const server of servers) server.models = models;
      const { scheduler, pool: p } = schedulerFor(servers, { scrapeInterval: 100 });
      scheduler.start();
      try {
        await waitFor(() => servers.every((server) => server.modelsHits > 0) && scheduler.contextWindow('p') === 4096, 5000, 'model lists read');
        for (const model of ['base', 'alias']) {
          const pick = await scheduler.pick(request(p, { targetModel: model }));
          pick.release(pick.endpoints[0], { reached: true, status: 200 });
          const d = scheduler.view('p')!.decisions[0];
          // Before: "alias" scored by free adapter slots (0.8 for servers[1]) and sent to the busier endpoint.
          assert.equal(d.scores['lora-affinity-scorer'], null, `${model} is no adapter`);
          assert.equal(d.endpoint, servers[0].address, `${model} goes where the load is least`);
        }
        const pick = await scheduler.pick(request(p, { targetModel: 'ad' }));
        pick.release(pick.endpoints[0], { reached: true, status: 200 });
        assert.notEqual(scheduler.view('p')!.decisions[0].scores['lora-affinity-scorer'], null, 'the adapter still is one');
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('update stops scraping removed endpoints and starts new ones', async () => {
    await withServers(2, async (servers) => {
      const { scheduler } = schedulerFor(servers.slice(0, 1), { scrapeInterval: 10 });
      scheduler.start();
      try {
        await waitFor(() => servers[0].hits > 0, 3000);
        scheduler.update(new Map([['p', pool('p', [servers[1].url])]]));
        await waitFor(() => servers[1].hits > 0, 3000);
        const stopped = servers[0].hits;
        await sleep(60);
        assert.ok(servers[0].hits <= stopped + 1, 'the removed endpoint is no longer scraped');
      } finally {
        await scheduler.stop();
      }
    });
  });
});

describe('HttpMetricsSource', () => {
  test('fetches /metrics, rejects non-200, and drops clients it no longer needs', async () => {
    await withServers(1, async ([server]) => {
      const source = new HttpMetricsSource(5000);
      try {
        server.serve('m 1');
        assert.deepEqual(await source.fetch(server.url), { text: 'm 1' });
        server.serve(404);
        await assert.rejects(source.fetch(server.url), /answered 404/);
        source.retain(new Set());
        server.serve('m 2');
        assert.deepEqual(await source.fetch(server.url), { text: 'm 2' });
      } finally {
        await source.close();
      }
    });
  });

  test("an answer that arrived while this process's event loop was stalled counts, though the deadline passed meanwhile", async () => {
    // The model server on a thread of its own, so it answers while this thread is busy; it counts its answers in
    // `answered` once they are in the socket.
    const answered = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { createServer } = require('node:http');
       const { parentPort, workerData } = require('node:worker_threads');
       const server = createServer((req, res) => res.end('vllm:num_requests_waiting 0\\n', () => Atomics.add(workerData, 0, 1)));
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
       parentPort.on('message', () => server.close(() => process.exit(0)));`,
      { eval: true, workerData: answered },
    );
    const [port] = (await once(worker, 'message')) as [number];
    const url = `http://127.0.0.1:${port}`;
    const source = new HttpMetricsSource(50);
    try {
      // Connected and warm; a loaded machine may miss the 50 ms on the way, and the next attempt connects again.
      await waitFor(() => source.fetch(url).then(() => true, () => false), 10_000, 'a warm-up scrape within 50 ms');
      // This thread is busy until the answer is in the socket and for over twice the deadline, so when its loop turns
      // again both the answer and the (late) deadline are due. A gateway starved of CPU must not count its endpoints
      // down for its own stall. undici writes a request on a kept-alive connection from a setImmediate (it first reads
      // what the idle socket may hold): the stall starts in the Immediate queued after it, before any poll reads the
      // answer. When the loop was too late for that (the deadline fired first), the situation is set up again.
      for (let attempt = 1; ; attempt++) {
        const before = Atomics.load(answered, 0);
        const scrape = source.fetch(url).then((page) => page, (err: Error) => err);
        await new Promise((r) => setImmediate(r));
        const start = performance.now();
        while ((Atomics.load(answered, 0) === before || performance.now() < start + 200) && performance.now() < start + 2000);
        const setUp = Atomics.load(answered, 0) > before;
        const page = await scrape;
        if (!setUp && attempt < 5) continue;
        assert.ok(setUp, 'the answer reached the socket during the stall in one of 5 attempts');
        assert.match(page instanceof Error ? page.message : page.text, /vllm:num_requests_waiting/);
        break;
      }
    } finally {
      await source.close();
      worker.postMessage('stop');
      await once(worker, 'exit');
    }
  });

  test('a page over 4 MiB is read to its last whole line within them, cut, instead of whole; a model list that large fails', async () => {
    await withServers(1, async ([server]) => {
      const source = new HttpMetricsSource(2000);
      try {
        const line = `# ${'x'.repeat(1021)}\n`; // 1 KiB
        server.serve(`vllm:num_requests_waiting 0\n${line.repeat(5 * 1024)}vllm:num_requests_running 1\n`);
        const page = await source.fetch(server.url);
        assert.equal(page.cut, true);
        assert.ok(page.text.length <= MAX_PAGE_BYTES && page.text.length > MAX_PAGE_BYTES - line.length, `${page.text.length} bytes`);
        assert.ok(page.text.startsWith('vllm:num_requests_waiting 0\n#') && page.text.endsWith(line), 'whole lines only');
        server.serve('vllm:num_requests_waiting 0\n');
        assert.deepEqual(await source.fetch(server.url), { text: 'vllm:num_requests_waiting 0\n' });
        server.models = JSON.stringify({ data: [{ id: 'x'.repeat(5 * 1024 * 1024) }] });
        await assert.rejects(source.fetchModels(server.url), /more than 4194304 bytes/);
      } finally {
        await source.close();
      }
    });
  });

  test('a model list that hangs neither holds back nor fails the scrapes beside it', async () => {
    await withServers(1, async ([server]) => {
      server.models = JSON.stringify({ data: [{ id: 'base', max_model_len: 4096 }] });
      server.modelsDelayMs = 1500; // past the 400 ms deadline
      const source = new HttpMetricsSource(400);
      try {
        const models = source.fetchModels(server.url).then(() => null, (err: Error) => err);
        await waitFor(() => server.modelsHits === 1, 2000, 'the model-list request at the server');
        // Before: one connection per endpoint, so this scrape waited behind the model list, then failed with it
        // ("The client is destroyed") when the model list's deadline dropped their shared Client.
        const started = performance.now();
        assert.deepEqual(await source.fetch(server.url), { text: vllmPage() });
        assert.ok(performance.now() - started < 300, `the scrape took ${Math.round(performance.now() - started)} ms`);
        const during = source.fetch(server.url);
        assert.match(String(await models), /took longer than 400 ms/);
        assert.deepEqual(await during, { text: vllmPage() });
        assert.deepEqual(await source.fetch(server.url), { text: vllmPage() }, 'the scrape connection outlives the model list');
      } finally {
        await source.close();
      }
    });
  });

  test('a server that does not answer in time fails the scrape', async () => {
    await withServers(1, async ([server]) => {
      server.delayMs = 300;
      const source = new HttpMetricsSource(50);
      try {
        await assert.rejects(source.fetch(server.url));
      } finally {
        await source.close();
      }
    });
  });
});

describe('a settings reload (Scheduler.configure) while scraping', () => {
  test('a shorter scrapeInterval moves the next scrapes forward at once', async () => {
    await withServers(1, async (servers) => {
      const { scheduler } = schedulerFor(servers, { scrapeInterval: 60_000, staleAfter: 120_000 });
      scheduler.start();
      try {
        await waitFor(() => servers[0].hits === 1, 3000, 'the first scrape');
        await sleep(100);
        assert.equal(servers[0].hits, 1, 'one scrape a minute');
        scheduler.configure({ ...SETTINGS, scrapeInterval: 20, staleAfter: 120_000 });
        // Under the old interval the next scrape would be a minute away.
        await waitFor(() => servers[0].hits >= 4, 5000, 'scrapes at the new interval');
        scheduler.configure({ ...SETTINGS, scrapeInterval: 60_000, staleAfter: 120_000 });
        const hits = servers[0].hits;
        await sleep(200);
        // Ten intervals of 20 ms; only the scrape that may have been on its way at the reload can land meanwhile.
        assert.ok(servers[0].hits <= hits + 1, 'back to one scrape a minute');
      } finally {
        await scheduler.stop();
      }
    });
  });

  test('the scrape timeout follows scrapeInterval and staleAfter', async () => {
    await withServers(1, async ([server]) => {
      server.delayMs = 400;
      // Timeout min(max(250, 5 × 200), 5000) = 1000 ms: a 400 ms answer is in time.
      const { scheduler, logs } = schedulerFor([server], { scrapeInterval: 200, staleAfter: 5000 });
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints[0].status === 'ready', 3000, 'the first scrape');
        // Timeout min(max(250, 100), 300) = 250 ms: the same answer is now too late, three times over.
        scheduler.configure({ ...SETTINGS, scrapeInterval: 20, staleAfter: 300 });
        await waitFor(() => logs.some((l) => l.status === 'unhealthy'), 5000, 'the endpoint to fail its scrapes');
        assert.match(String(scheduler.view('p')!.endpoints[0].lastError), /longer than 250 ms/);
      } finally {
        await scheduler.stop();
      }
    });
  });
});

describe('Scraper', () => {
  test('a page at the 4 MiB limit, cut at one scrape and whole at the next: told once, its adapters unknown until it comes well under', async () => {
    const small = vllmPage({ extra: 'vllm:lora_requests_info{max_lora="2",running_lora_adapters="a",waiting_lora_adapters=""} 1\n' });
    // Whole, just under the limit; the same page a few bytes longer comes cut (the gauges' digits changed).
    const large = small + `# ${'x'.repeat(MAX_PAGE_BYTES - small.length - 10)}\n`;
    const pages: MetricsPage[] = [];
    let cuts = 0;
    const scraper = new Scraper({
      source: { fetch: async () => pages.shift()!, retain: () => {}, close: async () => {} },
      intervalMs: 50,
      now: () => 1000,
      random: () => 0,
      onPageCut: () => cuts++,
    });
    const ep = new EndpointState({ url: 'http://10.0.0.1:8000', address: '10.0.0.1:8000' }, 'vllm');
    scraper.watch(ep, () => {});
    const adapters: (string[] | null)[] = [];
    const scrape = async (page: MetricsPage) => {
      pages.push(page);
      await scraper.refresh();
      adapters.push(ep.lora && [...ep.lora.running]);
    };
    for (const cut of [false, true, false, true, false]) await scrape({ text: large, cut: cut || undefined });
    // Before: a warning at each cut one, and the adapters known at each whole one.
    assert.equal(cuts, 1);
    assert.deepEqual(adapters, [['a'], null, null, null, null]);
    // A restart: the page is small again, its adapters known, and a cut page later is told again.
    await scrape({ text: small });
    await scrape({ text: large, cut: true });
    assert.deepEqual(adapters.slice(5), [['a'], null]);
    assert.equal(cuts, 2);
  });
});
