import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ModelNames } from './model-names.js';
import { endpoint, lora, snapshot } from './testing.js';

describe('ModelNames', () => {
  // Without a base model's name the pool cannot tell adapters by elimination: isAdapter says what the lists hold.
  test('a name counts while an endpoint lists it: as an adapter, in its metrics or its model list', () => {
    const names = new ModelNames();
    const [a, b] = [endpoint(1, { lora: lora(['x'], ['w'], 2) }), endpoint(2, { lora: lora(['x'], [], 2) })];
    names.note(a);
    names.note(b);
    assert.deepEqual(['x', 'w', 'y'].map((n) => names.isAdapter(n)), [true, true, false]);
    a.recordScrape(snapshot({ lora: lora(['y'], [], 2) }), 1050);
    names.note(a);
    assert.deepEqual(['x', 'w', 'y'].map((n) => names.isAdapter(n)), [true, false, true], 'x: b still lists it');
    names.forget(b);
    assert.equal(names.isAdapter('x'), false, 'no endpoint lists it any more');
    a.models = { contextWindow: undefined, baseModels: [], adapters: ['from-card'] };
    names.note(a);
    assert.deepEqual(['y', 'from-card'].map((n) => names.isAdapter(n)), [true, true]);
  });

  test('a name in several lists of one endpoint goes with the last of them', () => {
    const names = new ModelNames();
    const ep = endpoint(1, { lora: lora(['x'], ['x'], 2) });
    ep.models = { contextWindow: undefined, baseModels: [], adapters: ['x'] };
    names.note(ep);
    for (const [running, waiting, cards, want] of [[['x'], [], ['x'], true], [[], [], ['x'], true], [[], [], [], false]] as const) {
      ep.recordScrape(snapshot({ lora: lora([...running], [...waiting], 2) }), 1050);
      ep.models = { contextWindow: undefined, baseModels: [], adapters: [...cards] };
      names.note(ep);
      assert.equal(names.isAdapter('x'), want);
    }
  });

  test('an endpoint listing new adapter names at every scrape keeps only the names of now', () => {
    const names = new ModelNames();
    const ep = endpoint(1);
    for (let i = 0; i < 100; i++) {
      ep.recordScrape(snapshot({ lora: lora([`a${i}`, `b${i}`], [`c${i}`], 4) }), 1000 + i);
      names.note(ep);
    }
    assert.deepEqual(['a98', 'a99', 'b99', 'c99'].map((n) => names.isAdapter(n)), [false, true, true, true]);
  });

  test('servers that take adapters: any name that is not a base model is one', () => {
    const names = new ModelNames();
    const ep = endpoint(1, { modelName: 'base', lora: lora([], [], 2) });
    names.note(ep);
    assert.deepEqual(['base', 'new-adapter'].map((n) => names.isAdapter(n)), [false, true]);
    // A cut page (LoRA state unknown) does not make them servers without adapters.
    ep.recordScrape(snapshot({ modelName: 'base' }), 1050);
    names.note(ep);
    assert.equal(names.isAdapter('new-adapter'), true);
  });
});
