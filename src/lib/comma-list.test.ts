import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commaList } from './comma-list.js';

test('items trimmed, empty ones skipped; nothing for an unset or empty value', () => {
  assert.deepEqual(commaList(' a, ,b ,,c'), ['a', 'b', 'c']);
  assert.deepEqual(commaList(undefined), []);
  assert.deepEqual(commaList(''), []);
  assert.deepEqual(commaList(' , '), []);
});
