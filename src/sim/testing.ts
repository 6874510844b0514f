// Helpers for the simulator's tests (and other tests that drive it): a manual clock, HTTP calls, metric parsing.
import type { Clock } from './clock.js';

interface Timer {
  at: number;
  order: number;
  fn: () => void;
}

/** A clock that moves only when told to, firing due timers in order. */
export class ManualClock implements Clock {
  #now = 0;
  #timers: Timer[] = [];
  #order = 0;

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.#now + Math.max(0, ms), order: this.#order++, fn };
    this.#timers.push(timer);
    return () => {
      const i = this.#timers.indexOf(timer);
      if (i >= 0) this.#timers.splice(i, 1);
    };
  }

  /** Moves time forward by ms, running every timer due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#nextDue(end);
      if (due === undefined) break;
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
  }

  /** Runs timers until none are left (or limitMs of simulated time passed); returns the time reached. */
  runUntilIdle(limitMs = 3_600_000): number {
    const end = this.#now + limitMs;
    for (;;) {
      const due = this.#nextDue(end);
      if (due === undefined) return this.#now;
      this.#now = due.at;
      due.fn();
    }
  }

  #nextDue(end: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers) {
      if (t.at <= end && (best === undefined || t.at < best.at || (t.at === best.at && t.order < best.order))) best = t;
    }
    if (best) this.#timers.splice(this.#timers.indexOf(best), 1);
    return best;
  }
}

export function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });
}

/** Parsed Prometheus text: one entry per sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([^{\s]+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

export async function scrape(baseUrl: string): Promise<Sample[]> {
  const res = await fetch(`${baseUrl}/metrics`);
  return parseMetrics(await res.text());
}

export function sampleValue(samples: Sample[], name: string): number | undefined {
  return samples.find((s) => s.name === name)?.value;
}

/** Reads SSE `data:` payloads from a streamed response as they arrive. */
export async function* sseData(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) if (line.startsWith('data: ')) yield line.slice(6);
    }
  }
}

/**
 * Polls until check() is true, every `everyMs` (checks that send requests deserve a longer interval than in-memory
 * ones); after timeoutMs throws, naming `what` it waited for.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'the awaited condition', everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
