import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayError } from '../gateway/errors.js';
import { FlowControl, type DrainState, type QueueOutcome } from './flow-control.js';
import { socketPair, stall } from '../lib/test-stall.js';
import { pool, request } from './testing.js';
import { ClientPickRequest } from '../gateway/client-pick-request.js';
import type { RequestContext } from '../gateway/context.js';
import { compileConfig } from '../config/runtime-config.js';
import { hashBlocks } from './block-hash.js';
import { estimateTokens } from './endpoint-state.js';
import type { Pick, PickRequest } from './types.js';

function setup(maxQueueLength = 10, maxWait = 30_000, maxQueueBytes = 1 << 30) {
  let now = 1000;
  const observed: { priority: number; outcome: QueueOutcome; seconds: number }[] = [];
  const flow = new FlowControl({
    settings: { maxQueueLength, maxQueueBytes, maxWait },
    now: () => now,
    observe: (priority, outcome, seconds) => void observed.push({ priority, outcome, seconds }),
  });
  const p = pool('p', ['http://a:1']);
  const dispatched: { req: PickRequest; queuedMs: number }[] = [];
  const dispatch = (req: PickRequest, queuedMs: number): Pick => {
    dispatched.push({ req, queuedMs });
    return { endpoints: p.endpoints, release: () => {} };
  };
  return { flow, observed, dispatched, dispatch, p, advance: (ms: number) => void (now += ms) };
}

const code = (err: unknown) => (err as GatewayError).code;

describe('FlowControl', () => {
  test('drain dispatches by priority then tenant while the state allows, with the time each waited', async () => {
    const { flow, dispatched, dispatch, p, advance, observed } = setup();
    const picks = [
      flow.enqueue(request(p, { priority: 0, fairnessId: 'a', targetModel: 'a1' })),
      flow.enqueue(request(p, { priority: 0, fairnessId: 'a', targetModel: 'a2' })),
      flow.enqueue(request(p, { priority: 0, fairnessId: 'b', targetModel: 'b1' })),
      flow.enqueue(request(p, { priority: 1, fairnessId: 'c', targetModel: 'c1' })),
    ];
    assert.equal(flow.size, 4);
    advance(250);
    let budget = 3;
    flow.drain(() => (budget-- > 0 ? 'dispatch' : 'wait'), dispatch);
    assert.deepEqual(dispatched.map((d) => d.req.targetModel), ['c1', 'a1', 'b1']);
    assert.deepEqual(dispatched.map((d) => d.queuedMs), [250, 250, 250]);
    assert.equal(flow.size, 1);
    assert.deepEqual(flow.lengths(), [{ priority: 0, length: 1 }]);
    flow.drain(() => 'dispatch', dispatch);
    await Promise.all(picks);
    assert.deepEqual(observed.map((o) => [o.priority, o.outcome, o.seconds]), [
      [1, 'dispatched', 0.25],
      [0, 'dispatched', 0.25],
      [0, 'dispatched', 0.25],
      [0, 'dispatched', 0.25],
    ]);
  });

  test('a full queue makes room for a higher priority, and for a tenant holding less than the largest, by turning away the newest of the largest', async () => {
    const { flow, p, dispatch, dispatched, observed } = setup(4);
    const outcome = (pick: Promise<Pick>) => pick.then(() => 'dispatched', (err: unknown) => code(err));
    const flood = Array.from({ length: 4 }, (_, i) => outcome(flow.enqueue(request(p, { priority: 0, fairnessId: 'flooder', targetModel: `f${i}` }))));
    // Before: both refused (503 queue_full) while one tenant's standard requests held every place.
    const critical = outcome(flow.enqueue(request(p, { priority: 1, fairnessId: 'quiet', targetModel: 'c' })));
    const standard = outcome(flow.enqueue(request(p, { priority: 0, fairnessId: 'quiet', targetModel: 's' })));
    // The flooder's own next one, or the quiet tenant's second standard one (it would hold as many as the flooder's
    // two), have no claim; nor a sheddable one.
    assert.equal(await outcome(flow.enqueue(request(p, { priority: 0, fairnessId: 'flooder' }))), 'queue_full');
    assert.equal(await outcome(flow.enqueue(request(p, { priority: 0, fairnessId: 'quiet' }))), 'queue_full');
    assert.equal(await outcome(flow.enqueue(request(p, { priority: -1, fairnessId: 'other' }))), 'queue_full');
    flow.drain(() => 'dispatch', dispatch);
    assert.deepEqual(await Promise.all([...flood, critical, standard]), ['dispatched', 'dispatched', 'queue_full', 'queue_full', 'dispatched', 'dispatched']);
    assert.deepEqual(dispatched.map((d) => d.req.targetModel), ['c', 'f0', 's', 'f1']);
    assert.equal(observed.filter((o) => o.outcome === 'full').length, 5);
  });

  test('maxQueueBytes bounds the bodies queued: refused over it, displacing by the same rule as the length, all or none', async () => {
    const { flow, p, dispatch, dispatched, observed } = setup(10, 30_000, 100);
    const outcome = (pick: Promise<Pick>) => pick.then(() => 'dispatched', (err: unknown) => code(err));
    const big = request(p, { fairnessId: 'big', targetModel: 'b60', bytes: 60 });
    const held = [outcome(flow.enqueue(big)), outcome(flow.enqueue(request(p, { fairnessId: 'big', targetModel: 'b30', bytes: 30 })))];
    assert.equal(flow.bytes, 90);
    // Before: queued (two requests of ten allowed), whatever they held.
    assert.equal(await outcome(flow.enqueue(request(p, { fairnessId: 'big', bytes: 20 }))), 'queue_full');
    // Larger than the whole budget: no claim, even on an empty queue.
    assert.equal(await outcome(flow.enqueue(request(p, { priority: 5, fairnessId: 'other', bytes: 101 }))), 'queue_full');
    // A tenant holding less may take one place, not two: nothing is taken when one would not make room.
    assert.equal(await outcome(flow.enqueue(request(p, { fairnessId: 'small', bytes: 50 }))), 'queue_full');
    assert.equal(flow.size, 2);
    const small = outcome(flow.enqueue(request(p, { fairnessId: 'small', targetModel: 's15', bytes: 15 })));
    assert.equal(flow.bytes, 75, 'the newest of the largest tenant (30 bytes) gave its place');
    // A higher priority takes as many places of the lower one as it needs.
    const critical = outcome(flow.enqueue(request(p, { priority: 1, fairnessId: 'small', targetModel: 'c95', bytes: 95 })));
    assert.equal(flow.bytes, 95);
    flow.drain(() => 'dispatch', dispatch);
    assert.deepEqual(await Promise.all([...held, small, critical]), ['queue_full', 'queue_full', 'queue_full', 'dispatched']);
    assert.deepEqual(dispatched.map((d) => d.req.targetModel), ['c95']);
    assert.equal(flow.bytes, 0);
    assert.equal(observed.filter((o) => o.outcome === 'full').length, 6);
  });

  test("a queued request holds only the prompt's prefix the pool's scorers read, with the whole prompt's length", async () => {
    const { flow, dispatch, dispatched } = setup();
    const prompt = Array.from({ length: 40_000 }, (_, i) => `line ${i}\n`).join('');
    const hashes = (text: string, blockChars: number, max: number) => {
      const out = new Float64Array(max);
      return Array.from(out.subarray(0, hashBlocks('m', text, blockChars, max, out)));
    };
    const pools = [
      // The default profile: 256 blocks of 16 tokens × 4 characters.
      { p: pool('default', ['http://a:1']), chars: 256 * 16 * 4, blockChars: 64, blocks: 256 },
      {
        p: pool('custom', ['http://a:1'], { picker: { plugins: [{ type: 'prefix-cache-scorer', parameters: { maxPrefixBlocksToMatch: 8, blockSize: 4, charsPerToken: 3 } }] } }),
        chars: 8 * 4 * 3,
        blockChars: 12,
        blocks: 8,
      },
      { p: pool('none', ['http://a:1'], { picker: { plugins: [{ type: 'queue-scorer' }] } }), chars: 0, blockChars: 64, blocks: 256 },
    ];
    for (const { p } of pools) {
      const ctx = { modelConfig: { pool: p }, targetModel: 'm', priority: 0, fairnessId: 'a', bytesIn: prompt.length } as RequestContext;
      void flow.enqueue(new ClientPickRequest(ctx, prompt, undefined, { config: compileConfig([]) }));
    }
    flow.drain(() => 'dispatch', dispatch);
    for (const [i, { chars, blockChars, blocks }] of pools.entries()) {
      const req = dispatched[i].req;
      // Before: the whole prompt (over 400,000 characters) waited with the request.
      assert.equal(req.prompt.length, chars);
      assert.equal(req.promptChars, prompt.length);
      assert.deepEqual(hashes(req.prompt, blockChars, blocks), chars === 0 ? [] : hashes(prompt, blockChars, blocks), 'the same prefix hashes');
      assert.equal(estimateTokens(req), Math.ceil(prompt.length / 4), 'the same token estimate');
    }
  });

  test('an arrival already aborted turns no waiting request away', async () => {
    const { flow, p } = setup(1);
    const waiting = flow.enqueue(request(p, { priority: 0, fairnessId: 'a' }));
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await assert.rejects(flow.enqueue(request(p, { priority: 5, fairnessId: 'b', signal: controller.signal })), /gone/);
    assert.equal(flow.size, 1, 'the waiting one kept its place');
    flow.rejectAll(new Error('done'));
    await assert.rejects(waiting, /done/);
  });

  test('an answer that frees a slot during an event-loop stall dispatches the waiter instead of its timeout', async () => {
    const { flow, p, dispatch, dispatched } = setup(10, 20);
    const { client, server, close } = await socketPair();
    try {
      // As when a model server's answer ends and a slot frees: the data plane drains the queue.
      client.once('data', () => flow.drain(() => 'dispatch', dispatch));
      const pick = flow.enqueue(request(p));
      server.write('done');
      stall(100);
      await pick;
      assert.equal(dispatched.length, 1);
    } finally {
      await close();
    }
  });

  test('full queue: 503 queue_full at once', async () => {
    const { flow, p, observed, dispatch } = setup(2);
    const a = flow.enqueue(request(p));
    const b = flow.enqueue(request(p));
    await assert.rejects(flow.enqueue(request(p)), (err) => code(err) === 'queue_full' && (err as GatewayError).status === 503);
    assert.equal(observed.at(-1)!.outcome, 'full');
    flow.drain(() => 'dispatch', dispatch);
    await Promise.all([a, b]);
  });

  test('waiting longer than maxWait: 503 queue_timeout with retry-after, and the request leaves the queue', async () => {
    const { flow, p, observed } = setup(10, 20);
    const started = Date.now();
    // Before: no retry-after, where queue_full and request_shed have one.
    await assert.rejects(flow.enqueue(request(p)), (err: GatewayError) => err.code === 'queue_timeout' && err.status === 503 && err.headers['retry-after'] === '1');
    assert.ok(Date.now() - started >= 15);
    assert.equal(flow.size, 0);
    assert.equal(observed.at(-1)!.outcome, 'timeout');
  });

  test('an aborted request leaves the queue with the abort reason', async () => {
    const { flow, p, observed, dispatch, dispatched } = setup();
    const ac = new AbortController();
    const waiting = flow.enqueue(request(p, { signal: ac.signal }));
    const other = flow.enqueue(request(p, { targetModel: 'other' }));
    ac.abort(new Error('client went away'));
    await assert.rejects(waiting, /client went away/);
    assert.equal(flow.size, 1);
    assert.equal(observed.at(-1)!.outcome, 'aborted');
    flow.drain(() => 'dispatch', dispatch);
    await other;
    assert.deepEqual(dispatched.map((d) => d.req.targetModel), ['other']);
  });

  test('an already aborted request is not queued', async () => {
    const { flow, p } = setup();
    await assert.rejects(flow.enqueue(request(p, { signal: AbortSignal.abort(new Error('gone')) })), /gone/);
    assert.equal(flow.size, 0);
  });

  test("drain state 'none' rejects everything with 503 no_healthy_endpoints", async () => {
    const { flow, p, dispatch } = setup();
    const a = flow.enqueue(request(p));
    const b = flow.enqueue(request(p, { priority: 3 }));
    flow.drain((): DrainState => 'none', dispatch);
    await assert.rejects(a, (err) => code(err) === 'no_healthy_endpoints');
    await assert.rejects(b, (err) => code(err) === 'no_healthy_endpoints');
    assert.equal(flow.size, 0);
  });

  test('a dispatch that throws rejects that request only, recorded as rejected', async () => {
    const { flow, p, dispatch, observed } = setup();
    const bad = flow.enqueue(request(p, { targetModel: 'bad' }));
    const good = flow.enqueue(request(p, { targetModel: 'good' }));
    flow.drain(
      () => 'dispatch',
      (req, ms) => {
        if (req.targetModel === 'bad') throw new Error('no subset endpoint');
        return dispatch(req, ms);
      },
    );
    await assert.rejects(bad, /no subset endpoint/);
    await good;
    // Before: both recorded as dispatched, the refusal among the successes.
    assert.deepEqual(observed.map((o) => o.outcome), ['rejected', 'dispatched']);
    assert.equal(flow.bytes, 0);
  });

  test('rejectBelow refuses the queued requests under a priority, recorded as rejected, and leaves the others', async () => {
    const { flow, p, observed, dispatch } = setup();
    const standard = flow.enqueue(request(p, { priority: 0, bytes: 10 }));
    const sheddable = flow.enqueue(request(p, { priority: -1, bytes: 5 }));
    assert.equal(flow.tailPriority, -1);
    flow.rejectBelow(0, new Error('shed'));
    await assert.rejects(sheddable, /shed/);
    assert.deepEqual([flow.size, flow.bytes, flow.tailPriority], [1, 10, 0]);
    assert.deepEqual(observed.map((o) => [o.priority, o.outcome]), [[-1, 'rejected']]);
    flow.drain(() => 'dispatch', dispatch);
    await standard;
  });

  test('rejectAll empties the queue with the given error', async () => {
    const { flow, p, observed } = setup();
    const a = flow.enqueue(request(p));
    flow.rejectAll(new Error('stopping'));
    await assert.rejects(a, /stopping/);
    assert.equal(flow.size, 0);
    assert.equal(observed.at(-1)!.outcome, 'rejected');
  });
});
