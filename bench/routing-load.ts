// The routing benchmark's load generator: replays a request schedule open-loop against the gateway, streaming each
// response, timing the first SSE chunk (TTFT) and the end, and reading token counts from the usage chunk.
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import type { BenchRequest, PriorityClass } from './workloads.js';

export interface Outcome {
  priority?: PriorityClass;
  status: number;
  /** Simulated seconds; NaN when no token came back. */
  ttft: number;
  e2e: number;
  outputTokens: number;
}

export interface ReplayOptions {
  url: string;
  timeScale: number;
  /** Real milliseconds to wait for stragglers after the last arrival; those still open count as failed. */
  drainMs: number;
  onProgress?: (done: number, total: number) => void;
  /** Hang up on each answer at its first chunk: only TTFT is wanted, and the engine stops working on it. */
  firstTokenOnly?: boolean;
}

/** Sends each request at its `at` (simulated seconds, so at/timeScale real seconds), all concurrently. */
export async function replay(requests: BenchRequest[], opts: ReplayOptions): Promise<Outcome[]> {
  const pool = new Pool(opts.url, { connections: 1024, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
  const abort = new AbortController();
  // One signal ends every request still open at the drain deadline: a listener per request is expected.
  setMaxListeners(Infinity, abort.signal);
  const outcomes: Outcome[] = [];
  const inflight: Promise<void>[] = [];
  const started = performance.now();
  const toSim = (realMs: number) => (realMs * opts.timeScale) / 1000;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      // Everything due by now goes out, so the schedule holds when timers fire late.
      const now = (performance.now() - started) / 1000;
      while (next < requests.length && requests[next].at / opts.timeScale <= now) inflight.push(send(requests[next++]));
      opts.onProgress?.(outcomes.length, requests.length);
      if (next >= requests.length) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });

  async function send(req: BenchRequest): Promise<void> {
    const t0 = performance.now();
    const outcome: Outcome = { priority: req.priority, status: 0, ttft: NaN, e2e: NaN, outputTokens: 0 };
    try {
      const body = JSON.stringify({ model: req.model, messages: req.messages, max_tokens: req.maxTokens, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
      const r = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal });
      outcome.status = r.statusCode;
      let tail = '';
      for await (const chunk of r.body) {
        if (Number.isNaN(outcome.ttft) && r.statusCode === 200) {
          outcome.ttft = toSim(performance.now() - t0);
          // Leaving the loop destroys the body: the gateway sees the client go and cancels the upstream request. The
          // request ends there, as asked: its end-to-end time is its TTFT.
          if (opts.firstTokenOnly) {
            outcome.e2e = outcome.ttft;
            break;
          }
        }
        tail = (tail + (chunk as Buffer).toString('utf8')).slice(-1024);
      }
      if (r.statusCode === 200 && !opts.firstTokenOnly) {
        outcome.e2e = toSim(performance.now() - t0);
        outcome.outputTokens = Number(/"completion_tokens":(\d+)/.exec(tail)?.[1] ?? 0);
      }
    } catch {
      outcome.status = outcome.status || -1;
      outcome.e2e = NaN;
    }
    outcomes.push(outcome);
  }

  let timer: NodeJS.Timeout | undefined;
  const progress = setInterval(() => opts.onProgress?.(outcomes.length, requests.length), 500);
  await Promise.race([Promise.all(inflight), new Promise((r) => (timer = setTimeout(r, opts.drainMs)))]);
  clearTimeout(timer);
  abort.abort();
  await Promise.allSettled(inflight);
  clearInterval(progress);
  await pool.destroy();
  return outcomes;
}
