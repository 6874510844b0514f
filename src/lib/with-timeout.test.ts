import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { socketPair, stall } from './test-stall.js';
import { TimeoutError, withTimeout } from './with-timeout.js';

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
