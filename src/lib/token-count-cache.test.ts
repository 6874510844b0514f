import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_OVERHEAD_CHARS, TokenCountCache } from './token-count-cache.js';

/** A generation with room for `n` five-character texts. */
const room = (n: number) => n * (5 + ENTRY_OVERHEAD_CHARS);

/** A cache used as countTextTokens uses it: looked up, counted (its length) and kept on a miss. */
function counting(): { calls: string[]; cache: (maxChars: number) => { count: (text: string) => number; cache: TokenCountCache } } {
  const calls: string[] = [];
  return {
    calls,
    cache: (maxChars) => {
      const cache = new TokenCountCache(maxChars);
      const count = (text: string) => {
        const kept = cache.get(text);
        if (kept !== undefined) return kept;
        calls.push(text);
        cache.set(text, text.length);
        return text.length;
      };
      return { count, cache };
    },
  };
}

test('a text is counted once while it stays in use', () => {
  const { calls, cache } = counting();
  const c = cache(100);
  assert.equal(c.count('system prompt'), 13);
  assert.equal(c.count('system prompt'), 13);
  assert.deepEqual(calls, ['system prompt']);
});

test('memory is bounded: texts not used for two generations are counted again', () => {
  const { calls, cache } = counting();
  const c = cache(room(2));
  c.count('aaaaa'); // young: aaaaa
  c.count('bbbbb'); // young: aaaaa bbbbb (full)
  c.count('ccccc'); // rotation: old = {aaaaa, bbbbb}, young = {ccccc}
  c.count('aaaaa'); // from old, back into young (no count)
  c.count('ddddd'); // rotation: old = {ccccc, aaaaa}, young = {ddddd}; bbbbb is gone
  c.count('aaaaa');
  c.count('bbbbb');
  assert.deepEqual(calls, ['aaaaa', 'bbbbb', 'ccccc', 'ddddd', 'bbbbb']);
});

test('a text longer than a generation is counted every time, and evicts nothing', () => {
  const { calls, cache } = counting();
  const c = cache(room(2));
  const long = 'x'.repeat(room(2) - ENTRY_OVERHEAD_CHARS + 1);
  c.count('short');
  c.count(long);
  c.count(long);
  c.count('short');
  assert.deepEqual(calls, ['short', long, long]);
});

test('a count kept twice (two requests counted the text at once) takes its room in the generation once', () => {
  const { calls, cache } = counting();
  const c = cache(room(2));
  c.cache.set('aaaaa', 5);
  c.cache.set('aaaaa', 5);
  c.count('bbbbb'); // young: aaaaa bbbbb (full), no rotation
  c.count('aaaaa');
  c.count('ccccc'); // rotation: old = {aaaaa, bbbbb}
  c.count('bbbbb');
  assert.deepEqual(calls, ['bbbbb', 'ccccc']);
});

test("an entry's own overhead counts: many tiny texts fill a generation as their memory does, not by their characters", () => {
  const { calls, cache } = counting();
  const c = cache(room(2));
  // A generation holds two of them (106 characters' room, 49 each): a, b | c, d | e — by now a is gone.
  for (const text of ['a', 'b', 'c', 'd', 'e', 'a']) c.count(text);
  // Before: counted by characters alone, a generation of 106 held 106 one-character texts (~10 KB for 106 characters).
  assert.deepEqual(calls, ['a', 'b', 'c', 'd', 'e', 'a']);
});
