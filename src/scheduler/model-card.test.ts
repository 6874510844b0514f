import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextWindowOf } from './model-card.js';

test('contextWindowOf: the smallest max_model_len of the list; undefined for anything else', () => {
  assert.equal(contextWindowOf(JSON.stringify({ data: [{ id: 'a', max_model_len: 8192 }, { id: 'b', max_model_len: 4096 }, { id: 'c' }] })), 4096);
  for (const text of ['', 'not json', 'null', '[]', '{"data": {}}', '{"data": [{"max_model_len": "4096"}]}', '{"data": [{"max_model_len": 0}]}', '{"data": [null]}']) {
    assert.equal(contextWindowOf(text), undefined, text);
  }
});
