import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { countingTokens } from '../policy/testing.js';
import { OFF_LOOP_CHARS, closeTokenCountThread, countWalk } from './token-count-thread.js';
import { countTextTokensUncached, type CountWalk } from './tokenizer.js';

after(() => closeTokenCountThread());

function* one(text: string, budget: number): CountWalk {
  return yield { text, budget };
}

/** Long texts of each kind the tokenizer treats apart, each new to this process (so none is counted already). */
const long = (seed: string) => {
  const fill = (unit: string) => unit.repeat(Math.ceil((OFF_LOOP_CHARS + 1000) / unit.length)) + seed;
  return {
    prose: fill('The quick brown fox jumps over the lazy dog. '),
    cjk: fill('我们在这里讨论路由和配额，'),
    run: fill('a'),
    spaces: `x${fill(' ')}y\n\n`,
    special: fill('say <|endoftext|> now 🙂 '),
  };
};

test('a long text is counted off the event loop, to the very count countTextTokens gives, within a budget or past it', async () => {
  for (const [kind, text] of Object.entries(long('one'))) {
    const exact = countTextTokensUncached(text);
    // The last one is exact, kept: asked again, it would be answered at once.
    for (const budget of [Math.floor(exact / 2), exact - 1, exact]) {
      const started: (number | Promise<number>)[] = [];
      // Not one token counted on this thread.
      assert.equal(await countingTokens(async () => void started.push(countWalk(one(text, budget)))), 0, kind);
      const [counted] = started;
      assert.ok(counted instanceof Promise, `${kind} went to the thread`);
      assert.equal(await counted, countTextTokensUncached(text, budget), `${kind} within ${budget}`);
    }
  }
});

test('an exact count is kept, a count past a budget is not (asked with a larger budget, the text is counted again)', async () => {
  const { prose } = long('two');
  const exact = countTextTokensUncached(prose);
  assert.equal(await countWalk(one(prose, 1000)), 1001);
  const again = countWalk(one(prose, Infinity));
  assert.ok(again instanceof Promise, 'counted again, in the thread');
  assert.equal(await again, exact);
  // Now kept: answered at once, within any budget as countTextTokens answers.
  assert.equal(countWalk(one(prose, Infinity)), exact);
  assert.equal(countWalk(one(prose, exact - 1)), exact);
  assert.equal(countWalk(one(prose, 5)), 6);
});

test('a short text is counted at once, with nothing to await', () => {
  assert.equal(countWalk(one('Hello there', Infinity)), countTextTokensUncached('Hello there'));
  assert.equal(countWalk(one('x'.repeat(OFF_LOOP_CHARS), 10)), 11);
});

test("tenants' long texts are counted in turn: another tenant's waits behind one of a tenant's, not all of them", async () => {
  const order: string[] = [];
  const ask = (tenant: string, n: number) => {
    const counted = countWalk(one(long(`${tenant}-${n}-turns`).prose, Infinity), tenant);
    assert.ok(counted instanceof Promise);
    return counted.then(() => void order.push(`${tenant}${n}`));
  };
  // Queued at once, tenant a first: a1 goes to the thread; then the turns are a, b, a.
  await Promise.all([ask('a', 1), ask('a', 2), ask('a', 3), ask('b', 1)]);
  assert.deepEqual(order, ['a1', 'a2', 'b1', 'a3']);
});
