// Test support for policies and the engine: request contexts without a server, a settable clock, dependencies
// over any counter store, and counter stores that cannot answer.
import type { IncomingHttpHeaders } from 'node:http';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../gateway/context.js';
import { newContext } from '../gateway/data-plane.js';
import type { OpenAIBody, Operation } from '../gateway/openai-request.js';
import { silentLogger } from '../lib/logger.js';
import { loadTokenizer } from '../lib/tokenizer.js';
import type { CounterStore, ReserveResult, SmoothedResult, WindowResult } from '../store/counters/counter-store.js';
import { CounterStoreUnavailableError } from '../store/counters/errors.js';
import { CounterGuard } from './counter-guard.js';
import type { IdentitySource } from './identity.js';
import { MemoryIdentitySource } from './memory-identity.js';
import type { Policy, PolicyDeps } from './types.js';

export interface FakeRequest {
  headers?: IncomingHttpHeaders;
  method?: string;
  /** Path with query string. */
  url?: string;
  body?: Partial<OpenAIBody>;
  operation?: Operation;
  model?: string;
}

/** A chat completion for `model` by default; pass `body: undefined`-like fields to change it. */
export function fakeContext(r: FakeRequest = {}): RequestContext {
  const model = r.model ?? 'llama';
  const body = { model, messages: [{ role: 'user', content: 'Hello there' }], ...r.body } as OpenAIBody;
  const ctx = newContext(r.method ?? 'POST', r.url ?? '/v1/chat/completions', r.headers ?? {}, '127.0.0.1');
  ctx.id = 'test';
  ctx.operation = r.operation ?? 'chat.completions';
  ctx.body = body;
  ctx.model = model;
  ctx.stream = body.stream === true;
  return ctx;
}

/** A clock tests move by hand. */
export class TestClock {
  constructor(public t: number) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A whole UTC day (a Monday) in the past, so every window used in tests starts exactly there. */
export const MONDAY = Date.parse('2025-06-02T00:00:00Z');

/** A limit over time as a table: the policy of `spec`, asked at each step (ms after MONDAY), allows or refuses. */
export interface ClockCase {
  name: string;
  spec: Record<string, unknown>;
  steps: [atMs: number, allowed: boolean][];
}

/** One test per case, each with its own policy from `make` on a clock starting at MONDAY. */
export function testClockCases(cases: readonly ClockCase[], make: (spec: Record<string, unknown>, clock: TestClock) => Policy, allowed: (policy: Policy) => Promise<boolean>): void {
  for (const c of cases) {
    test(c.name, async () => {
      const clock = new TestClock(MONDAY);
      const policy = make(c.spec, clock);
      for (const [atMs, expected] of c.steps) {
        clock.t = MONDAY + atMs;
        assert.equal(await allowed(policy), expected, `at +${atMs} ms`);
      }
    });
  }
}

export function testDeps(store: CounterStore, opts: { now?: () => number; identity?: IdentitySource; failOpen?: boolean; timeoutMs?: number } = {}): PolicyDeps {
  return {
    counters: new CounterGuard(store, { failOpen: opts.failOpen ?? false, timeoutMs: opts.timeoutMs ?? 1000, logger: silentLogger }),
    identity: opts.identity ?? new MemoryIdentitySource(),
    now: opts.now ?? Date.now,
  };
}

let seq = 0;
/** A name no other test uses, so tests sharing a counter store never share a counter. */
export function unique(name: string): string {
  return `${name}-${++seq}`;
}

const unavailable = () => Promise.reject(new CounterStoreUnavailableError('Redis is unavailable: connection refused'));

/** Every call fails the way Redis does during an outage. */
export class UnavailableCounterStore implements CounterStore {
  consume = (): Promise<WindowResult> => unavailable();
  consumeRolling = (): Promise<WindowResult> => unavailable();
  consumeSmoothed = (): Promise<SmoothedResult> => unavailable();
  reserve = (): Promise<ReserveResult> => unavailable();
  settle = (): Promise<boolean> => unavailable();
  adjust = (): Promise<number> => unavailable();
  get = (): Promise<number> => unavailable();
  close = (): Promise<void> => Promise.resolve();
}

/** Every call hangs until close(): slower than any timeout. */
export class HangingCounterStore implements CounterStore {
  readonly #waiting: (() => void)[] = [];
  #hang = <T>(): Promise<T> => new Promise<T>((_, reject) => this.#waiting.push(() => reject(new Error('closed'))));
  consume = (): Promise<WindowResult> => this.#hang();
  consumeRolling = (): Promise<WindowResult> => this.#hang();
  consumeSmoothed = (): Promise<SmoothedResult> => this.#hang();
  reserve = (): Promise<ReserveResult> => this.#hang();
  settle = (): Promise<boolean> => this.#hang();
  adjust = (): Promise<number> => this.#hang();
  get = (): Promise<number> => this.#hang();
  close = async (): Promise<void> => {
    for (const w of this.#waiting.splice(0)) w();
  };
}

/**
 * Runs `body` counting the tokens the tokenizer hands out, both ways it counts (whole texts, and token by token up to
 * a limit): how much of a prompt a policy counted.
 */
export async function countingTokens(body: () => Promise<void>): Promise<number> {
  type Tokenizer = { countTokens: (text: string) => number; default: { encodeGenerator: (text: string) => Generator<number[]> } };
  const gpt = loadTokenizer() as unknown as Tokenizer;
  const { countTokens } = gpt;
  const { encodeGenerator } = gpt.default;
  let tokens = 0;
  gpt.countTokens = (text) => {
    const n = countTokens(text);
    tokens += n;
    return n;
  };
  gpt.default.encodeGenerator = function* (text) {
    for (const t of encodeGenerator(text)) {
      tokens += t.length;
      yield t;
    }
  };
  try {
    await body();
  } finally {
    gpt.countTokens = countTokens;
    gpt.default.encodeGenerator = encodeGenerator;
  }
  return tokens;
}
