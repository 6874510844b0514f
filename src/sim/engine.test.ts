import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type EngineOptions, type SequenceSpec } from './engine.js';
import { promptBlockHashes } from './kv-cache.js';
import { decodeStepSeconds, prefillSeconds } from './latency-model.js';
import { ManualClock } from './testing.js';

const tokens = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => i + offset);

function setup(overrides: Partial<EngineOptions> = {}) {
  const clock = new ManualClock();
  const engine = new Engine({
    maxNumSeqs: 64,
    maxQueue: 100,
    maxBatchedTokens: 8192,
    kvBlocks: 2048,
    maxLoras: 2,
    loraLoadMs: 200,
    timeScale: 1,
    clock,
    ...overrides,
  });
  return { clock, engine };
}

interface Trace {
  submitted: number;
  firstToken?: number;
  finished?: number;
  tokens: number[];
  /** The step end each token was reported with. */
  at: number[];
}

function submit(
  env: ReturnType<typeof setup>,
  spec: Partial<SequenceSpec> & { prompt?: number[] } = {},
): { trace: Trace; seq: ReturnType<Engine['submit']> } {
  const { clock, engine } = env;
  const prompt = spec.prompt ?? tokens(100);
  const trace: Trace = { submitted: clock.now(), tokens: [], at: [] };
  const seq = engine.submit({
    lora: spec.lora,
    promptTokens: spec.promptTokens ?? prompt.length,
    blockHashes: spec.blockHashes ?? promptBlockHashes(spec.lora ?? 'm', prompt),
    outputTokens: spec.outputTokens ?? 10,
    onToken: (i, at) => {
      if (i === 0) trace.firstToken = clock.now();
      trace.tokens.push(i);
      trace.at.push(at);
    },
    onFinish: () => {
      trace.finished = clock.now();
    },
  });
  return { trace, seq };
}

const ttft = (t: Trace) => t.firstToken! - t.submitted;

describe('latency model', () => {
  test('prefill grows with uncached tokens, with a floor; decode steps grow with the batch and its context', () => {
    assert.equal(prefillSeconds(0), 0.04);
    assert.ok(prefillSeconds(4000) > prefillSeconds(1000));
    assert.ok(decodeStepSeconds(64, 100) > decodeStepSeconds(1, 100));
    // The fit's own example: 16 sequences of 2,050 tokens step in 33.2 ms, more than twice a step with no context.
    assert.ok(Math.abs(decodeStepSeconds(16, 16 * 2050) - 0.0332) < 1e-4);
    assert.ok(decodeStepSeconds(16, 16 * 2050) > 2 * decodeStepSeconds(16, 0));
  });
});

describe('Engine', () => {
  test('a lone request: TTFT is its prefill, then one token per decode step', () => {
    const env = setup();
    const { trace } = submit(env, { prompt: tokens(1000), outputTokens: 5 });
    env.clock.runUntilIdle();
    assert.deepEqual(trace.tokens, [0, 1, 2, 3, 4]);
    assert.ok(Math.abs(ttft(trace) - prefillSeconds(1000) * 1000) < 1e-6);
    // Each decode step reads the prompt and every token generated so far (1,001 after the prefill's token).
    let decode = 0;
    for (let held = 1001; held <= 1004; held++) decode += decodeStepSeconds(1, held);
    const e2e = trace.finished! - trace.submitted;
    assert.ok(Math.abs(e2e - (prefillSeconds(1000) + decode) * 1000) < 1e-6);
  });

  test('sequences admitted in one step share one prefill, charged over all their tokens', () => {
    const env = setup();
    const a = submit(env, { prompt: tokens(100, 0), outputTokens: 2 }).trace;
    const b = submit(env, { prompt: tokens(100, 10_000), outputTokens: 2 }).trace;
    env.clock.runUntilIdle();
    assert.ok(Math.abs(ttft(a) - prefillSeconds(200) * 1000) < 1e-6);
    assert.equal(ttft(b), ttft(a));
  });

  test('decode steps slow down as the batch holds longer contexts', () => {
    const short = setup();
    const s = submit(short, { prompt: tokens(100), outputTokens: 20 }).trace;
    short.clock.runUntilIdle();
    const long = setup();
    const l = submit(long, { prompt: tokens(8000), outputTokens: 20 }).trace;
    long.clock.runUntilIdle();
    const decodeTime = (t: Trace) => t.finished! - t.firstToken!;
    assert.ok(decodeTime(l) > 1.2 * decodeTime(s), `${decodeTime(l)} ms vs ${decodeTime(s)} ms`);
  });

  test('time scale divides every duration', () => {
    const slow = setup();
    const fast = setup({ timeScale: 10 });
    const a = submit(slow, { outputTokens: 20 }).trace;
    const b = submit(fast, { outputTokens: 20 }).trace;
    slow.clock.runUntilIdle();
    fast.clock.runUntilIdle();
    assert.ok(Math.abs(a.finished! - 10 * b.finished!) < 1e-6);
  });

  test('a prefix-cache hit has a lower TTFT than a miss for the same long prompt', () => {
    const env = setup();
    const prompt = tokens(4000);
    const miss = submit(env, { prompt, outputTokens: 2 }).trace;
    env.clock.runUntilIdle();
    const hit = submit(env, { prompt, outputTokens: 2 }).trace;
    env.clock.runUntilIdle();
    assert.ok(ttft(hit) < ttft(miss) / 3, `hit ${ttft(hit)} ms vs miss ${ttft(miss)} ms`);
    assert.equal(env.engine.prefixQueryTokens, 8000);
    assert.equal(env.engine.prefixHitTokens, 3999);
  });

  test('a prompt of no tokens counts no prefix-cache hit (a negative count broke the metrics page)', () => {
    const env = setup();
    const { trace, seq } = submit(env, { prompt: [], outputTokens: 2 });
    env.clock.runUntilIdle();
    assert.deepEqual(trace.tokens, [0, 1]);
    assert.equal(seq!.cachedTokens, 0);
    assert.equal(env.engine.prefixHitTokens, 0);
  });

  test("a request's sequences are queued together, all or none; the queue bound counts the request once", () => {
    const env = setup({ maxNumSeqs: 2, maxQueue: 1 });
    const spec = (): SequenceSpec => ({ promptTokens: 100, blockHashes: promptBlockHashes('m', tokens(100)), outputTokens: 5, onToken() {}, onFinish() {} });
    assert.equal(env.engine.submitAll([spec(), spec(), spec(), spec()])?.length, 4);
    env.clock.advance(1);
    assert.equal(env.engine.runningCount, 2);
    assert.equal(env.engine.waitingCount, 2);
    assert.equal(env.engine.submitAll([spec(), spec()]), null);
    assert.equal(env.engine.waitingCount, 2);
    env.clock.runUntilIdle();
    assert.equal(env.engine.runningCount + env.engine.waitingCount, 0);
  });

  test('more concurrent load gives longer TTFT and slower decoding', () => {
    const alone = setup();
    const single = submit(alone, { outputTokens: 50 }).trace;
    alone.clock.runUntilIdle();

    const busy = setup();
    const traces = Array.from({ length: 40 }, (_, i) => submit(busy, { prompt: tokens(100, i * 1000), outputTokens: 50 }).trace);
    busy.clock.runUntilIdle();
    const meanTtft = traces.reduce((s, t) => s + ttft(t), 0) / traces.length;
    assert.ok(meanTtft > 2 * ttft(single));
    const decodeTime = (t: Trace) => t.finished! - t.firstToken!;
    assert.ok(decodeTime(traces[0]) > decodeTime(single));
  });

  test('at most maxNumSeqs run; the rest wait, and the queue beyond maxQueue is refused', () => {
    const env = setup({ maxNumSeqs: 2, maxQueue: 3 });
    const results = Array.from({ length: 6 }, () => submit(env, { outputTokens: 5 }).seq);
    // 2 free slots + 3 queue places.
    assert.deepEqual(results.map((s) => s !== null), [true, true, true, true, true, false]);
    env.clock.advance(1);
    assert.equal(env.engine.runningCount, 2);
    assert.equal(env.engine.waitingCount, 3);
    env.clock.runUntilIdle();
    assert.equal(env.engine.runningCount, 0);
    assert.equal(env.engine.waitingCount, 0);
  });

  test('prefill per step is bounded by maxBatchedTokens, so earlier requests get earlier first tokens', () => {
    const env = setup({ maxBatchedTokens: 2000 });
    const a = submit(env, { prompt: tokens(1500, 0), outputTokens: 3 }).trace;
    const b = submit(env, { prompt: tokens(1500, 10_000), outputTokens: 3 }).trace;
    env.clock.runUntilIdle();
    assert.ok(a.firstToken! < b.firstToken!);
  });

  test('a prefill longer than maxBatchedTokens is split over steps, and running sequences decode between its chunks', () => {
    const env = setup({ maxBatchedTokens: 2048 });
    const running = submit(env, { prompt: tokens(100), outputTokens: 300 }).trace;
    env.clock.advance(100);
    assert.ok(running.tokens.length > 0);
    const long = submit(env, { prompt: tokens(10_000, 50_000), outputTokens: 2 }).trace;
    env.clock.runUntilIdle();
    // vLLM's chunked prefill: 2,048 tokens a step, five steps, and a token for the running sequence in each of them
    // (and one from the step under way when the long prompt came); before, the whole prefill was one step of ~0.7 s
    // in which the running stream stood still.
    const during = running.at.filter((t) => t > long.submitted && t < long.firstToken!);
    assert.equal(during.length, 5);
    let gap = 0;
    for (let i = 1; i < running.at.length; i++) gap = Math.max(gap, running.at[i] - running.at[i - 1]);
    assert.ok(gap <= (decodeStepSeconds(1, 400) + prefillSeconds(2048)) * 1000 + 1e-6, `longest gap ${gap} ms`);
    assert.equal(long.tokens.length, 2);
  });

  test("tokens are reported with their step's scheduled end, however late the timer fires", () => {
    const manual = new ManualClock();
    // Every timer fires 7 ms late.
    const late = { now: () => manual.now(), setTimer: (fn: () => void, ms: number) => manual.setTimer(fn, ms + 7) };
    const env = { clock: manual, engine: setup({ clock: late }).engine };
    const trace = submit(env, { prompt: tokens(1000), outputTokens: 3 }).trace;
    manual.runUntilIdle();
    const prefill = prefillSeconds(1000) * 1000;
    assert.ok(Math.abs(trace.at[0] - prefill) < 1e-6, `first token at ${trace.at[0]} ms`);
    assert.ok(trace.firstToken! > trace.at[0], 'the callback itself ran late');
    assert.ok(Math.abs(trace.at[1] - trace.at[0] - decodeStepSeconds(1, 1001) * 1000) < 1e-6);
  });

  test("prompt and generation tokens are counted as the steps produce them, a cancelled sequence's too", () => {
    const env = setup();
    const { trace, seq } = submit(env, { prompt: tokens(100), outputTokens: 10 });
    while (trace.tokens.length < 3) env.clock.advance(1);
    env.engine.cancel(seq!);
    assert.deepEqual([env.engine.promptTokens, env.engine.generationTokens], [100, 3]);
    submit(env, { prompt: tokens(50, 900), outputTokens: 0 });
    env.clock.runUntilIdle();
    assert.deepEqual([env.engine.promptTokens, env.engine.generationTokens], [150, 3]);
  });

  test('with nothing else running, a sequence may take every block: a context the cache holds at all is served', () => {
    // 100 blocks of 16: 1,600 tokens, of which the 1% watermark would leave 1,584.
    const env = setup({ kvBlocks: 100 });
    const full = submit(env, { prompt: tokens(1599), outputTokens: 1 }).trace;
    env.clock.runUntilIdle();
    assert.equal(full.tokens.length, 1);
    // Prefill-only work needs no slot for a next token.
    const embedding = submit(env, { prompt: tokens(1600, 5000), outputTokens: 0 }).trace;
    env.clock.runUntilIdle();
    assert.ok(embedding.finished !== undefined);
  });

  test('a sequence holds KV blocks while running and frees them when done or cancelled', () => {
    const env = setup();
    const { seq } = submit(env, { prompt: tokens(320), outputTokens: 100 });
    const other = submit(env, { prompt: tokens(320, 5000), outputTokens: 100 });
    env.clock.advance(1000);
    assert.ok(env.engine.kv.usage > 0);
    const held = env.engine.kv.usedBlocks;
    env.engine.cancel(other.seq!);
    assert.ok(env.engine.kv.usedBlocks < held);
    assert.equal(env.engine.runningCount, 1);
    env.clock.runUntilIdle();
    assert.equal(seq!.state, 'done');
    assert.equal(other.trace.finished, undefined);
    assert.equal(env.engine.kv.usedBlocks, 0);
  });

  test('requests wait while the KV cache is full', () => {
    // 30 blocks (1 reserved): each 200-token prompt with 40 output tokens needs 13–16 blocks.
    const env = setup({ kvBlocks: 30 });
    const a = submit(env, { prompt: tokens(200), outputTokens: 40 }).trace;
    const b = submit(env, { prompt: tokens(200, 1000), outputTokens: 40 }).trace;
    const c = submit(env, { prompt: tokens(200, 2000), outputTokens: 40 }).trace;
    env.clock.runUntilIdle();
    for (const t of [a, b, c]) assert.equal(t.tokens.length, 40);
    assert.ok(c.firstToken! > Math.min(a.finished!, b.finished!) - 1e-9, 'the third starts once space frees up');
    assert.equal(env.engine.kv.usedBlocks, 0);
  });

  test('growing sequences that run out of blocks are preempted and still finish', () => {
    const env = setup({ kvBlocks: 20 });
    const traces = Array.from({ length: 3 }, (_, i) => submit(env, { prompt: tokens(60, i * 100), outputTokens: 120 }).trace);
    env.clock.runUntilIdle();
    for (const t of traces) assert.deepEqual(t.tokens, Array.from({ length: 120 }, (_, i) => i));
    assert.equal(env.engine.kv.usedBlocks, 0);
    // A recomputed prefill is not counted again.
    assert.deepEqual([env.engine.promptTokens, env.engine.generationTokens], [180, 360]);
  });

  test('LoRA: loading costs time, at most maxLoras resident, idle adapters are evicted', () => {
    const env = setup({ maxLoras: 1, loraLoadMs: 200 });
    const base = submit(env, { outputTokens: 1 }).trace;
    const a = submit(env, { lora: 'a', outputTokens: 20 }).trace;
    const b = submit(env, { lora: 'b', outputTokens: 5 }).trace;
    env.clock.advance(100);
    assert.ok(base.finished !== undefined, 'base-model requests need no adapter');
    assert.deepEqual(env.engine.loras.loading, ['a']);
    assert.deepEqual([...env.engine.waitingLoras].sort(), ['a', 'b']);
    env.clock.advance(150);
    assert.deepEqual(env.engine.loras.resident, ['a']);
    assert.deepEqual([...env.engine.runningLoras], ['a']);
    assert.equal(b.firstToken, undefined, 'b waits: the only slot serves a running request');
    env.clock.runUntilIdle();
    assert.ok(a.firstToken! >= 200);
    assert.ok(b.firstToken! >= a.finished! + 200, 'b loads after a finished');
    assert.deepEqual(env.engine.loras.resident, ['b']);
  });

  test('a resident adapter is used without loading again', () => {
    const env = setup({ maxLoras: 2, loraLoadMs: 200 });
    const first = submit(env, { lora: 'a', outputTokens: 1 }).trace;
    env.clock.runUntilIdle();
    const second = submit(env, { lora: 'a', outputTokens: 1, prompt: tokens(100, 7777) }).trace;
    env.clock.runUntilIdle();
    assert.ok(ttft(first) >= 200);
    assert.ok(ttft(second) < 100);
  });

  test('prefill-only sequences (embeddings) finish without tokens', () => {
    const env = setup();
    const { trace } = submit(env, { outputTokens: 0 });
    env.clock.runUntilIdle();
    assert.deepEqual(trace.tokens, []);
    assert.ok(trace.finished! > 0);
  });

  test('close cancels everything and stops the timer', () => {
    const env = setup();
    submit(env, { outputTokens: 1000 });
    env.clock.advance(50);
    env.engine.close();
    assert.equal(env.engine.runningCount, 0);
    assert.equal(env.clock.runUntilIdle(), 50);
    assert.equal(env.engine.submit({ promptTokens: 1, blockHashes: [], outputTokens: 1, onToken() {}, onFinish() {} }), null);
  });
});
