import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SimServerOptions } from './options.js';
import { startSimServer } from './server.js';
import { postJson, sseData, waitFor } from './testing.js';

const MODEL = 'sim-model';

async function withSim(opts: SimServerOptions, fn: (sim: Awaited<ReturnType<typeof startSimServer>>) => Promise<void>) {
  const sim = await startSimServer({ model: MODEL, timeScale: 20, ...opts });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

const chat = (url: string, extra: object = {}) =>
  postJson(`${url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, ...extra });

/** Reads a stream to its end; returns the data events seen and whether it ended in an error. */
async function drain(res: Response): Promise<{ events: string[]; failed: boolean }> {
  const events: string[] = [];
  try {
    for await (const data of sseData(res)) events.push(data);
    return { events, failed: false };
  } catch {
    return { events, failed: true };
  }
}

describe('fault injection', () => {
  test('error rate: that fraction of requests get a vLLM-shaped 500', async () => {
    await withSim({ errorRate: 1 }, async (sim) => {
      const res = await chat(sim.url);
      assert.equal(res.status, 500);
      assert.equal((await res.json()).error.type, 'InternalServerError');
    });
    await withSim({ errorRate: 0.5, seed: 3 }, async (sim) => {
      const statuses = [];
      for (let i = 0; i < 40; i++) statuses.push((await chat(sim.url)).status);
      const failures = statuses.filter((s) => s === 500).length;
      assert.ok(failures > 5 && failures < 35, `${failures} of 40 failed`);
      assert.ok(statuses.every((s) => s === 200 || s === 500));
    });
  });

  test('failNext answers the next K requests with the given status, then recovers', async () => {
    await withSim({}, async (sim) => {
      sim.failNext(2, 429);
      const first = await chat(sim.url);
      assert.equal(first.status, 429);
      assert.equal(first.headers.get('retry-after'), '1');
      assert.equal((await first.json()).error.type, 'RateLimitError');
      assert.equal((await chat(sim.url)).status, 429);
      assert.equal((await chat(sim.url)).status, 200);
      sim.failNext(1);
      assert.equal((await chat(sim.url)).status, 503);
      assert.equal((await chat(sim.url)).status, 200);
    });
  });

  test('kill drops every connection until revive', async () => {
    await withSim({}, async (sim) => {
      assert.equal((await chat(sim.url)).status, 200);
      sim.kill();
      assert.equal(sim.state().dead, true);
      await assert.rejects(chat(sim.url));
      await assert.rejects(fetch(`${sim.url}/health`));
      await assert.rejects(fetch(`${sim.url}/metrics`));
      sim.revive();
      assert.equal((await chat(sim.url)).status, 200);
      assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    });
  });

  test('die-after N: N requests are served, then the server is gone', async () => {
    await withSim({ dieAfter: 2 }, async (sim) => {
      assert.equal((await chat(sim.url)).status, 200);
      assert.equal((await chat(sim.url)).status, 200);
      await assert.rejects(chat(sim.url));
      await assert.rejects(fetch(`${sim.url}/health`));
      assert.equal(sim.state().dead, true);
    });
  });

  test('die mid-stream: the stream starts, then the socket is cut after a few chunks', async () => {
    await withSim({ dieAfter: 0, dieMidStream: 3 }, async (sim) => {
      const res = await chat(sim.url, { max_tokens: 50, stream: true });
      assert.equal(res.status, 200);
      const { events, failed } = await drain(res);
      assert.equal(failed, true);
      assert.ok(events.length >= 3 && events.length < 50, `${events.length} events before the cut`);
      assert.ok(!events.includes('[DONE]'));
      // Non-streamed requests on a dying server get no answer.
      await assert.rejects(chat(sim.url).then((r) => r.text()));
      await waitFor(() => sim.state().running === 0);
    });
  });

  test('kill during a stream cuts it mid-way and frees the sequence', async () => {
    await withSim({ timeScale: 10 }, async (sim) => {
      const res = await chat(sim.url, { max_tokens: 5000, stream: true });
      const events: string[] = [];
      let failed = false;
      try {
        for await (const data of sseData(res)) {
          events.push(data);
          if (events.length === 3) sim.kill();
        }
      } catch {
        failed = true;
      }
      assert.equal(failed, true);
      assert.ok(events.length >= 3 && events.length < 100);
      await waitFor(() => sim.state().running === 0);
      assert.equal(sim.state().kvUsedBlocks, 0);
    });
  });

  test('kill with midStreamChunks lets open streams send that many more chunks at most', async () => {
    await withSim({ timeScale: 10 }, async (sim) => {
      const res = await chat(sim.url, { max_tokens: 5000, stream: true });
      const reading = drain(res);
      await waitFor(() => sim.state().running === 1);
      sim.kill({ midStreamChunks: 2 });
      const { failed } = await reading;
      assert.equal(failed, true);
      sim.revive();
      const ok = await drain(await chat(sim.url, { stream: true }));
      assert.equal(ok.failed, false);
      assert.equal(ok.events.at(-1), '[DONE]');
    });
  });

  test('latency spikes delay the answer', async () => {
    await withSim({ timeScale: 4, latencySpikeRate: 1, latencySpikeMs: 800 }, async (sim) => {
      const start = performance.now();
      assert.equal((await chat(sim.url)).status, 200);
      assert.ok(performance.now() - start >= 190);
      sim.setFaults({ latencySpikeRate: 0 });
      const again = performance.now();
      await chat(sim.url);
      assert.ok(performance.now() - again < 190);
    });
  });
});
