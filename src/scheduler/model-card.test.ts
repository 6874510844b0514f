import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readModelList } from './model-card.js';

test('readModelList: the smallest max_model_len of the list', () => {
  const list = readModelList(JSON.stringify({ data: [{ id: 'a', max_model_len: 8192 }, { id: 'b', max_model_len: 4096 }, { id: 'c' }] }));
  assert.equal(list?.contextWindow, 4096);
  for (const text of ['{"data": [{"max_model_len": "4096"}]}', '{"data": [{"max_model_len": 0}]}', '{"data": [null]}', '{"data": []}']) {
    assert.equal(readModelList(text)?.contextWindow, undefined, text);
  }
});

test('readModelList: cards without a parent are base model names, with one adapters', () => {
  // vLLM --served-model-name base alias --lora-modules sql=...: a card per served name (parent null), one per adapter.
  const vllm = {
    object: 'list',
    data: [
      { id: 'base', root: '/models/llama', parent: null, max_model_len: 8192 },
      { id: 'alias', root: '/models/llama', parent: null, max_model_len: 8192 },
      { id: 'sql', root: '/adapters/sql', parent: 'base' },
    ],
  };
  assert.deepEqual(readModelList(JSON.stringify(vllm)), { contextWindow: 8192, baseModels: ['base', 'alias'], adapters: ['sql'] });
  // SGLang gives adapters max_model_len null; trtllm-serve's one card has no parent field at all.
  const sglang = { data: [{ id: 'base', max_model_len: 4096 }, { id: 'sql', parent: 'base', max_model_len: null }] };
  assert.deepEqual(readModelList(JSON.stringify(sglang)), { contextWindow: 4096, baseModels: ['base'], adapters: ['sql'] });
});

test('readModelList: undefined for what is no model list', () => {
  for (const text of ['', 'not json', 'null', '[]', '{"data": {}}']) assert.equal(readModelList(text), undefined, text);
});
