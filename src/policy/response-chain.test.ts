// Chaining response flows: each event through every rewrite in order; several events from one go on one by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainResponseFlows } from './response-chain.js';

test('events a rewrite adds each pass the rest of the chain; a dropped one stops there; all dropped is null', () => {
  const chain = chainResponseFlows([
    { event: (d) => (d === 'split' ? ['one', 'two', 'drop'] : d) },
    { event: (d) => (d === 'drop' || d === 'gone' ? null : d.toUpperCase()) },
  ])!;
  assert.deepEqual(chain.event!('split'), ['ONE', 'TWO']);
  assert.equal(chain.event!('plain'), 'PLAIN');
  assert.equal(chain.event!('gone'), null);
  const allDropped = chainResponseFlows([{ event: () => ['drop', 'drop'] }, { event: () => null }])!;
  assert.equal(allDropped.event!('x'), null);
});

test('a flow that only observes sees the answer after every rewrite, wherever it was listed', () => {
  const seen: string[] = [];
  const bodies: string[] = [];
  const chain = chainResponseFlows([
    { observes: true, event: (d) => (seen.push(d), d), body: (b) => (bodies.push(b.toString()), b) },
    { event: (d) => d.replace('secret', '[REDACTED]'), body: (b) => Buffer.from(b.toString().replace('secret', '[REDACTED]')) },
  ])!;
  assert.equal(chain.event!('a secret'), 'a [REDACTED]');
  assert.deepEqual(seen, ['a [REDACTED]']);
  assert.equal(chain.body!(Buffer.from('the secret'), 200).toString(), 'the [REDACTED]');
  assert.deepEqual(bodies, ['the [REDACTED]']);
  assert.equal(chain.observes, undefined);
});

test('observers alone keep one copy of the answer, as large as the largest of them reads; one without a limit reads up to the body limit', () => {
  const observer = (observeLimit?: number) => ({ observes: true, observeLimit, body: (b: Buffer) => b });
  const chain = chainResponseFlows([observer(1000), observer(3000)])!;
  assert.equal(chain.observes, true);
  assert.equal(chain.observeLimit, 3000);
  assert.equal(chainResponseFlows([observer(1000), observer()])!.observeLimit, undefined);
  // With a rewrite among them, the answer is held whole, as the rewrite needs it.
  assert.equal(chainResponseFlows([observer(1000), { body: (b: Buffer) => b }])!.observes, undefined);
});

test("a flow's events at a stream's end pass the rewrites and observers after it, not those before", () => {
  const seen: string[] = [];
  const chain = chainResponseFlows([
    { event: (d) => `first(${d})` },
    { observes: true, event: (d) => (seen.push(d), d) },
    { event: (d) => d, eventsAtEnd: () => ['held secret'] },
    { event: (d) => d.replace('secret', '[REDACTED]') },
  ])!;
  // Before: the chain had no eventsAtEnd, and what the flow held was lost with two policies or more.
  assert.deepEqual(chain.eventsAtEnd!(), ['held [REDACTED]']);
  assert.deepEqual(seen, ['held [REDACTED]']);
  assert.equal(chainResponseFlows([{ event: (d) => d }, { body: (b) => b }])!.eventsAtEnd, undefined);
});
