import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildChoices, type ChoiceSpec } from './choices.js';

const spec = (over: Partial<ChoiceSpec>): ChoiceSpec => ({ seed: 7, count: 1, cap: 40, maxOutputTokens: 200, ignoreEos: true, minTokens: 0, stop: [], output: { kind: 'text' }, ...over });

test('a stop string ends the text before it, even across pieces, and the steps up to it still count', () => {
  const [full] = buildChoices(spec({}));
  const text = full.pieces.join('');
  const stop = text.slice(10, 16);
  const [cut] = buildChoices(spec({ stop: ['never-there', stop] }));
  assert.equal(cut.finishReason, 'stop');
  assert.equal(cut.pieces.join(''), text.slice(0, text.indexOf(stop)));
  assert.ok(cut.pieces.length < full.pieces.length);
});

test('n choices differ; the first is the one-choice answer', () => {
  const three = buildChoices(spec({ count: 3 }));
  assert.equal(new Set(three.map((c) => c.pieces.join(''))).size, 3);
  assert.deepEqual(three[0], buildChoices(spec({}))[0]);
});

test('tool arguments follow the schema and are cut by the cap like any output', () => {
  const parameters = { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 3 }, tags: { type: 'array', items: { type: 'string' } } } };
  const [call] = buildChoices(spec({ output: { kind: 'tool', tool: { name: 'w', parameters }, finishReason: 'tool_calls' } }));
  const args = JSON.parse(call.pieces.join(''));
  assert.equal(call.finishReason, 'tool_calls');
  assert.equal(call.toolCall!.name, 'w');
  assert.equal(typeof args.city, 'string');
  assert.ok(['c', 'f'].includes(args.unit));
  assert.ok(args.days >= 1 && args.days <= 3);
  assert.equal(args.tags.length, 1);
  const [short] = buildChoices(spec({ cap: 3, output: { kind: 'tool', tool: { name: 'w', parameters }, finishReason: 'tool_calls' } }));
  assert.deepEqual([short.pieces.length, short.finishReason], [3, 'length']);
});

test("an integer argument stays an integer within its bounds, fractional bounds rounded inwards; a number within its own", () => {
  const parameters = {
    type: 'object',
    properties: { n: { type: 'integer', minimum: 0.5, maximum: 3.5 }, x: { type: 'number', minimum: 0.5, maximum: 1 }, empty: { type: 'integer', minimum: 5, maximum: 1 } },
  };
  for (let seed = 0; seed < 50; seed++) {
    const [call] = buildChoices(spec({ seed, cap: 200, output: { kind: 'tool', tool: { name: 'f', parameters }, finishReason: 'tool_calls' } }));
    const args = JSON.parse(call.pieces.join(''));
    assert.ok(Number.isInteger(args.n) && args.n >= 1 && args.n <= 3, `n ${args.n}`);
    assert.ok(args.x >= 0.5 && args.x <= 1, `x ${args.x}`);
    assert.equal(args.empty, 5, 'no integer in [5, 1]: the minimum');
  }
});
