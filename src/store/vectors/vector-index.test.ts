// The semantic-index contract every backend passes (memory, Redis, PostgreSQL): nearest match above a threshold,
// scopes kept apart, expiry, per-scope caps; then the vector helpers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEntry, entrySimilarity, entryValue, normalize, similarity } from './vector-index.js';
import { MemoryVectorIndex } from './memory.js';
import { VECTOR_BACKENDS, type TestVectorIndex } from './test-vector-indexes.js';

/** A unit vector at `angle` radians from the x axis, in 4 dimensions. */
const at = (angle: number) => normalize([Math.cos(angle), Math.sin(angle), 0, 0]);
const text = (b: Buffer | undefined) => b?.toString();

for (const backend of VECTOR_BACKENDS) {
  describe(`vector index on ${backend.name}`, { skip: backend.skip }, () => {
    let t = 1_000_000;
    let handle: TestVectorIndex;
    before(async () => {
      handle = await backend.create({ maxEntriesPerScope: 3, now: () => t });
    });
    after(() => handle?.dispose());

    test('an empty scope finds nothing', async () => {
      assert.equal(await handle.index.search('empty', at(0), 0.5), undefined);
    });

    test('the closest entry above the threshold wins', async () => {
      await handle.index.add('s1', 'east', at(0), Buffer.from('east'), 60_000);
      await handle.index.add('s1', 'north', at(Math.PI / 2), Buffer.from('north'), 60_000);
      const m = await handle.index.search('s1', at(0.1), 0.9);
      assert.equal(text(m?.value), 'east');
      assert.ok(Math.abs(m!.similarity - Math.cos(0.1)) < 1e-5);
      assert.equal(await handle.index.search('s1', at(Math.PI / 4), 0.9), undefined, 'cos 45° ≈ 0.71 is below 0.9');
      assert.equal(text((await handle.index.search('s1', at(1.4), 0.9))?.value), 'north');
    });

    test('scopes never see each other', async () => {
      await handle.index.add('tenant-a', 'a', at(0), Buffer.from('a'), 60_000);
      assert.equal(await handle.index.search('tenant-b', at(0), 0.5), undefined);
      assert.equal(text((await handle.index.search('tenant-a', at(0), 0.5))?.value), 'a');
    });

    test('entries expire after their time to live', async () => {
      await handle.index.add('ttl', 'x', at(0), Buffer.from('x'), 1000);
      t += 999;
      assert.ok(await handle.index.search('ttl', at(0), 0.5));
      t += 1;
      assert.equal(await handle.index.search('ttl', at(0), 0.5), undefined);
    });

    test('vectors of another dimension never match', async () => {
      await handle.index.add('dims', 'x', at(0), Buffer.from('x'), 60_000);
      assert.equal(await handle.index.search('dims', normalize([1, 0, 0]), -1), undefined);
    });

    test('a scope keeps at most maxEntriesPerScope entries, newest kept', async () => {
      for (let i = 0; i < 6; i++) {
        t += 1;
        await handle.index.add('cap', `e${i}`, at(i * 0.5), Buffer.from(`e${i}`), 60_000 + i);
      }
      assert.equal(text((await handle.index.search('cap', at(2.5), 0.99))?.value), 'e5');
      assert.equal(await handle.index.search('cap', at(0), 0.99), undefined, 'the oldest went');
    });

    test('an answer added again under its key replaces the entry: repeats never push others out', async () => {
      await handle.index.add('same', 'other', at(0), Buffer.from('other'), 60_000);
      // 0.02 rad apart (similarity 0.9998): too far for the memory index to take them for one vector, so the key decides.
      for (let i = 0; i < 5; i++) {
        t += 1;
        await handle.index.add('same', 'prompt', at(1 + i * 0.02), Buffer.from(`answer ${i}`), 60_000);
      }
      assert.equal(text((await handle.index.search('same', at(1.08), 0.9999))?.value), 'answer 4');
      assert.equal(await handle.index.search('same', at(1), 0.9999), undefined, 'the first answer was replaced');
      // Before: five rows on PostgreSQL and five fields on Redis, the cap of 3 dropping the other prompt's.
      assert.equal(text((await handle.index.search('same', at(0), 0.99))?.value), 'other');
    });

    test('concurrent adds under one key leave one entry', async () => {
      await handle.index.add('burst', 'other', at(0), Buffer.from('other'), 60_000);
      await Promise.all(Array.from({ length: 20 }, () => handle.index.add('burst', 'prompt', at(1), Buffer.from('answer'), 60_000)));
      assert.equal(text((await handle.index.search('burst', at(1), 0.99))?.value), 'answer');
      assert.equal(text((await handle.index.search('burst', at(0), 0.99))?.value), 'other', 'not pushed out by copies');
    });
  });
}

test('the memory index drops a scope whose entries have all expired', async () => {
  let t = 1_000_000;
  const index = new MemoryVectorIndex({ now: () => t });
  for (let i = 0; i < 100; i++) index.add(`context-${i}`, 'q', at(0), Buffer.from('answer'), 1000);
  index.add('kept', 'q', at(0), Buffer.from('answer'), 5000);
  assert.equal(index.scopes, 101);
  t += 2000;
  for (let i = 0; i < 100; i++) assert.equal(index.search(`context-${i}`, at(0), 0.5), undefined);
  assert.equal(index.scopes, 1, 'only the scope with a live entry is left');
  assert.equal(text(index.search('kept', at(0), 0.5)?.value), 'answer');
  index.add('context-0', 'q', at(0), Buffer.from('again'), 1000);
  assert.equal(text(index.search('context-0', at(0), 0.5)?.value), 'again', 'a dropped scope starts over');
});

describe('vector helpers', () => {
  test('normalize gives unit length; similarity is the cosine', () => {
    const v = normalize([3, 4]);
    assert.ok(Math.abs(v[0] - 0.6) < 1e-6 && Math.abs(v[1] - 0.8) < 1e-6);
    assert.ok(Math.abs(similarity(v, normalize([4, 3])) - 0.96) < 1e-6);
    assert.equal(similarity(v, normalize([1, 0, 0])), -Infinity);
  });

  test('the binary entry keeps the vector and the value', () => {
    const v = normalize([1, 2, 3]);
    const e = encodeEntry(v, Buffer.from('answer'), 42);
    assert.ok(Math.abs(entrySimilarity(e, v) - 1) < 1e-6);
    assert.equal(entryValue(e).toString(), 'answer');
  });
});
