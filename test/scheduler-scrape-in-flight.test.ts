// Requests sent while an endpoint's /metrics scrape is on its way still count once it lands: its page was taken before
// they were sent (before, the landing scrape wiped them, and the next burst piled onto the endpoint that looked idle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricsSource } from '../src/scheduler/metrics-source.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { SETTINGS, pool, request, vllmPage } from '../src/scheduler/testing.js';
import type { Pick } from '../src/scheduler/types.js';

test('picks made while a scrape is on its way are still counted after it lands', async () => {
  const urls = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'];
  // Idle pages, taken when asked for; while `hold` is set, the first endpoint's answers until land() is called.
  let hold = false;
  let land: (() => void) | undefined;
  const source: MetricsSource = {
    fetch: (url) => (hold && url === urls[0] ? new Promise((r) => (land = () => r({ text: vllmPage() }))) : Promise.resolve({ text: vllmPage() })),
    retain: () => {},
    close: async () => {},
  };
  const scheduler = new Scheduler({ settings: SETTINGS, now: () => 1_000_000, random: () => 0, metricsSource: source });
  const p = pool('p', urls);
  scheduler.update(new Map([['p', p]]));
  await scheduler.refresh();
  hold = true;
  const scrape = scheduler.refresh();
  for (let i = 0; i < 6; i++) scheduler.pick(request(p, { prompt: `q${i}` }));
  const queues = () => scheduler.view('p')!.endpoints.map((e) => e.metrics.effectiveQueue);
  assert.deepEqual(queues(), [3, 3]);
  land!();
  await scrape;
  assert.deepEqual(queues(), [3, 3]);
  const next = Array.from({ length: 4 }, (_, i) => (scheduler.pick(request(p, { prompt: `r${i}` })) as Pick).endpoints[0].address);
  assert.deepEqual(next.sort(), ['10.0.0.1:8000', '10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.2:8000']);
  await scheduler.stop();
});
