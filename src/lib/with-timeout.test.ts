import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { socketPair, stall } from './test-stall.js';
import { TimeoutError, withStallTimeout, withTimeout } from './with-timeout.js';

describe('withTimeout', () => {
  test('an answer that arrived while the event loop was stalled beats the deadline that fell due meanwhile', async () => {
    const { client, server, close } = await socketPair();
    try {
      const order: string[] = [];
      const echoed = once(client, 'data').then(([chunk]) => {
        order.push('answer read');
        return String(chunk);
      });
      // Control: a plain timer of the same length fires before the answer is read, so the stall below shows the case.
      setTimeout(() => order.push('plain timer'), 20);
      const answer = withTimeout(echoed, 20, 'the echo');
      // The other side answers at once (it is in the kernel's buffer), but this process reads it only after the stall.
      server.write('ping');
      stall(150);
      assert.equal(await answer, 'ping');
      assert.deepEqual(order, ['plain timer', 'answer read']);
    } finally {
      await close();
    }
  });

  test('work that does not answer is refused with a TimeoutError naming it', async () => {
    const never = new Promise<never>(() => {});
    await assert.rejects(withTimeout(never, 10, 'the silent work'), (err: unknown) => err instanceof TimeoutError && /the silent work did not finish within 10 ms/.test(err.message));
  });

  test("the work's own failure passes through unchanged", async () => {
    const boom = new Error('boom');
    await assert.rejects(withTimeout(Promise.reject(boom), 1000, 'x'), (err: unknown) => err === boom);
  });
});

describe('withStallTimeout', () => {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('work that goes on making progress is not given up, however long it takes in all', async () => {
    const pages = async (progress: () => void) => {
      for (let page = 0; page < 8; page++) {
        await pause(15);
        progress();
      }
      return 'read';
    };
    // Before (withTimeout): 120 ms of pages were refused by a 50 ms bound on the whole.
    assert.equal(await withStallTimeout(pages, 50, 'the pages'), 'read');
  });

  test('work that stops making progress is refused with a TimeoutError naming it', async () => {
    const stalls = async (progress: () => void) => {
      await pause(15);
      progress();
      await new Promise<never>(() => {});
    };
    await assert.rejects(withStallTimeout(stalls, 30, 'the pages'), (err: unknown) => err instanceof TimeoutError && /the pages made no progress for 30 ms/.test(err.message));
  });

  test('progress after the work ended arms no timer (which would hold the process open)', async () => {
    let late = (): void => {};
    await withStallTimeout(async (progress) => void (late = progress), 10_000, 'x');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    late();
    assert.equal(timers(), before);
  });
});
