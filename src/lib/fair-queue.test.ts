import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue } from './fair-queue.js';

type Item = { priority: number; fairnessId: string; id: string };
const item = (priority: number, fairnessId: string, id: string): Item => ({ priority, fairnessId, id });

function drain(q: FairQueue<Item>): string[] {
  const out: string[] = [];
  for (let x = q.shift(); x; x = q.shift()) out.push(x.id);
  return out;
}

describe('FairQueue', () => {
  test('higher priority first, FIFO within one tenant', () => {
    const q = new FairQueue<Item>();
    q.push(item(0, 't', 's1'));
    q.push(item(-1, 't', 'x1'));
    q.push(item(1, 't', 'c1'));
    q.push(item(0, 't', 's2'));
    q.push(item(5, 't', 'o1'));
    assert.equal(q.size, 5);
    assert.deepEqual(q.lengths(), [
      { priority: 5, length: 1 },
      { priority: 1, length: 1 },
      { priority: 0, length: 2 },
      { priority: -1, length: 1 },
    ]);
    assert.deepEqual(drain(q), ['o1', 'c1', 's1', 's2', 'x1']);
    assert.equal(q.size, 0);
  });

  test('round-robin between tenants of one priority, whatever their arrival order', () => {
    const q = new FairQueue<Item>();
    for (let i = 1; i <= 4; i++) q.push(item(0, 'big', `b${i}`));
    q.push(item(0, 'small', 's1'));
    q.push(item(0, 'other', 'o1'));
    q.push(item(0, 'small', 's2'));
    assert.deepEqual(drain(q), ['b1', 's1', 'o1', 'b2', 's2', 'b3', 'b4']);
  });

  test('a tenant that comes back later joins the end of the rotation', () => {
    const q = new FairQueue<Item>();
    q.push(item(0, 'a', 'a1'));
    q.push(item(0, 'b', 'b1'));
    q.push(item(0, 'b', 'b2'));
    assert.equal(q.shift()!.id, 'a1');
    q.push(item(0, 'a', 'a2'));
    assert.deepEqual(drain(q), ['b1', 'a2', 'b2']);
  });

  test('remove takes out one item and keeps the rotation right', () => {
    const q = new FairQueue<Item>();
    const a1 = item(0, 'a', 'a1');
    const b1 = item(0, 'b', 'b1');
    const c1 = item(1, 'c', 'c1');
    q.push(a1);
    q.push(b1);
    q.push(item(0, 'b', 'b2'));
    q.push(c1);
    assert.equal(q.remove(a1), true);
    assert.equal(q.remove(a1), false);
    assert.equal(q.remove(c1), true);
    assert.equal(q.size, 2);
    assert.deepEqual(q.lengths(), [{ priority: 0, length: 2 }]);
    assert.deepEqual(drain(q), ['b1', 'b2']);
    assert.equal(q.remove(b1), false);
  });

  test('removing a tenant before the turn keeps the next tenant next', () => {
    const q = new FairQueue<Item>();
    const a1 = item(0, 'a', 'a1');
    q.push(a1);
    q.push(item(0, 'b', 'b1'));
    q.push(item(0, 'c', 'c1'));
    q.push(item(0, 'c', 'c2'));
    assert.equal(q.shift()!.id, 'a1'); // a leaves the rotation; b is next
    q.push(item(0, 'a', 'a2'));
    assert.equal(q.shift()!.id, 'b1');
    assert.deepEqual(drain(q), ['c1', 'a2', 'c2']);
  });

  test('removing a tenant behind the turn keeps the turn on the same tenant', () => {
    const q = new FairQueue<Item>();
    const a2 = item(0, 'a', 'a2');
    q.push(item(0, 'a', 'a1'));
    q.push(a2);
    q.push(item(0, 'b', 'b1'));
    q.push(item(0, 'c', 'c1'));
    assert.equal(q.shift()!.id, 'a1'); // b's turn now
    assert.equal(q.remove(a2), true); // a leaves from behind the turn
    assert.deepEqual(drain(q), ['b1', 'c1']);
  });
});

test('tenantSize counts one tenant over every priority', () => {
  const q = new FairQueue<Item>();
  for (const [p, t, id] of [[0, 'a', '1'], [1, 'a', '2'], [0, 'b', '3'], [0, 'a', '4']] as const) q.push(item(p, t, id));
  assert.deepEqual([q.tenantSize('a'), q.tenantSize('b'), q.tenantSize('c')], [3, 1, 0]);
  q.shift();
  assert.equal(q.tenantSize('a'), 2);
});

test('takeBelow takes out every band below a priority, and the lowest queued priority follows', () => {
  const q = new FairQueue<Item>();
  assert.equal(q.tailPriority, undefined);
  q.push(item(0, 'a', 's1'));
  q.push(item(-1, 'a', 'x1'));
  q.push(item(-2, 'b', 'y1'));
  q.push(item(-1, 'b', 'x2'));
  assert.equal(q.tailPriority, -2);
  assert.deepEqual(q.takeBelow(0).map((x) => x.id).sort(), ['x1', 'x2', 'y1']);
  assert.equal(q.size, 1);
  assert.equal(q.tailPriority, 0);
  assert.deepEqual(q.takeBelow(0), []);
  assert.deepEqual(drain(q), ['s1']);
});
