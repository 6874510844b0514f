import { test, describe } from 'node:test';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { HttpMetricsSource } from './metrics-source.js';
import { Scheduler } from './scheduler.js';
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
      const { scheduler, logs } = schedulerFor(servers, { scrapeInterval: 10 });
      assert.equal(scheduler.contextWindow('p'), undefined, 'nothing known before the first scrape');
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready') && scheduler.contextWindow('p') === 2048, 3000);
        await sleep(100);
        assert.equal(servers[0].modelsHits, 1, 'read once, not at every scrape');
        // The one without a model list is told once (a vLLM with --api-key answers 401 there for good).
        const unknown = logs.filter((l) => String(l.msg).startsWith('context length unknown'));
        assert.deepEqual(unknown.map((l) => l.endpoint), [servers[2].address]);
        assert.match(String(unknown[0].reason), /404/);
        assert.ok(servers[0].hits > 3);
        assert.equal(scheduler.contextWindow('unknown'), undefined);
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
        const before = servers[0].hits;
        await sleep(150);
        // 15 intervals; a loaded test machine may lose some of them.
        assert.ok(servers[0].hits - before >= 3, `only ${servers[0].hits - before} scrapes in 150 ms`);
        assert.equal(servers[1].maxConcurrent, 1);
        const pick = await scheduler.pick(request(pool('p', []), {}));
        assert.equal(pick.endpoints.length, 2);
      } finally {
        await scheduler.stop();
      }
      const after = servers[0].hits;
      await sleep(50);
      assert.equal(servers[0].hits, after, 'no scrapes after stop');
    });
  });

  test('stale, then unhealthy, then recovered — logged once each, and picked only when ready', async () => {
    await withServers(2, async (servers) => {
      const { scheduler, logs } = schedulerFor(servers, { scrapeInterval: 20, staleAfter: 100 });
      scheduler.start();
      try {
        await waitFor(() => scheduler.view('p')!.endpoints.every((e) => e.status === 'ready'), 3000);
        servers[1].delayMs = 400; // every scrape now times out (timeout = staleAfter here)
        await waitFor(() => logs.some((l) => l.status === 'unhealthy'), 5000);
        const warnings = logs.filter((l) => l.endpoint === servers[1].address && l.status !== undefined);
        assert.deepEqual(
          warnings.map((l) => l.status),
          ['stale', 'unhealthy'],
        );
        const pick = await scheduler.pick(request(pool('p', [])));
        assert.deepEqual(pick.endpoints.map((e) => e.address), [servers[0].address]);
        servers[1].delayMs = 0;
        await waitFor(() => logs.some((l) => l.msg === 'endpoint recovered'), 5000);
        assert.equal(logs.filter((l) => l.msg === 'endpoint recovered').length, 1);
        await waitFor(() => scheduler.view('p')!.endpoints[1].status === 'ready', 3000);
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
      const source = new HttpMetricsSource(500);
      try {
        server.serve('m 1');
        assert.equal(await source.fetch(server.url), 'm 1');
        server.serve(404);
        await assert.rejects(source.fetch(server.url), /answered 404/);
        source.retain(new Set());
        server.serve('m 2');
        assert.equal(await source.fetch(server.url), 'm 2');
      } finally {
        await source.close();
      }
    });
  });

  test("an answer that arrived while this process's event loop was stalled counts, though the deadline passed meanwhile", async () => {
    // The model server on a thread of its own, so it answers while this thread is busy.
    const worker = new Worker(
      `const { createServer } = require('node:http');
       const { parentPort } = require('node:worker_threads');
       const server = createServer((req, res) => res.end('vllm:num_requests_waiting 0\\n'));
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
       parentPort.on('message', () => server.close(() => process.exit(0)));`,
      { eval: true },
    );
    const [port] = (await once(worker, 'message')) as [number];
    const url = `http://127.0.0.1:${port}`;
    const source = new HttpMetricsSource(50);
    try {
      await source.fetch(url); // connected and warm
      const scrape = source.fetch(url);
      // The answer comes within a few ms; this thread is busy for 200 ms, so when its loop turns again both the answer
      // and the deadline are due. A gateway starved of CPU must not count its endpoints down for its own stall.
      const until = performance.now() + 200;
      while (performance.now() < until);
      assert.match(await scrape, /vllm:num_requests_waiting/);
    } finally {
      await source.close();
      worker.postMessage('stop');
      await once(worker, 'exit');
    }
  });

  test('a page over 4 MiB fails the scrape instead of being read and parsed whole', async () => {
    await withServers(1, async ([server]) => {
      const source = new HttpMetricsSource(2000);
      try {
        server.serve(`vllm:num_requests_waiting 0\n# ${'x'.repeat(5 * 1024 * 1024)}\n`);
        await assert.rejects(source.fetch(server.url), /more than 4194304 bytes/);
        server.serve('vllm:num_requests_waiting 0\n');
        assert.equal(await source.fetch(server.url), 'vllm:num_requests_waiting 0\n');
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
        await sleep(50); // a scrape under way may still finish
        const hits = servers[0].hits;
        await sleep(200);
        assert.equal(servers[0].hits, hits, 'back to one scrape a minute');
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
