import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOf } from '../config/manifest.js';
import { compileConfig } from '../config/runtime-config.js';
import { newContext } from './data-plane.js';
import { modelsAnswer } from './models-list.js';

const pool = (name: string) => manifestOf('InferencePool', name, { endpoints: [`http://${name}.example:8000`] });
const model = (name: string, modelName: string, poolName: string, targets?: string[]) =>
  manifestOf('InferenceModel', name, { modelName, poolRef: { name: poolName }, ...(targets && { targetModels: targets.map((t) => ({ name: t, weight: 1 })) }) });

const config = compileConfig([
  pool('a'),
  pool('b'),
  pool('c'),
  model('plain', 'plain', 'a'),
  model('one-target', 'alias', 'a', ['base']),
  model('adapter', 'sql', 'a', ['sql-lora-v2']),
  model('split', 'split', 'a', ['base', 'base-next']),
  // One name in two pools (an HTTPRoute chooses): its cards agree only where the pools do.
  model('same-a', 'same', 'a', ['base']),
  model('same-b', 'same', 'b', ['base']),
  model('differ-a', 'differ', 'a', ['base']),
  model('differ-c', 'differ', 'c', ['other']),
]);

/** Engines' context lengths by pool, as the endpoint picker reads them from their /v1/models; pool c has not said. */
const fleet = { contextWindow: (p: string) => ({ a: 8192, b: 4096 })[p as 'a' | 'b'] };

const cards = (f: typeof fleet | undefined) => {
  const answer = modelsAnswer(config, newContext('GET', '/v1/models', {}, undefined), 1, f);
  const list = JSON.parse(String(answer.body)) as { data: Record<string, unknown>[] };
  return Object.fromEntries(list.data.map(({ id, root, parent, max_model_len }) => [id, [root, parent, max_model_len]])) as Record<string, unknown[]>;
};

test('model cards carry vLLM\'s root, parent and max_model_len: the name sent upstream, no parent, the smallest context the pools report', () => {
  assert.deepEqual(cards(fleet), {
    plain: ['plain', null, 8192],
    alias: ['base', null, 8192],
    // A LoRA adapter target is a model the client calls by the listed name: vLLM's parent would name its base model.
    sql: ['sql-lora-v2', null, 8192],
    split: [null, null, 8192],
    same: ['base', null, 4096],
    // Pool c's engines have not said: the smallest of those that have.
    differ: [null, null, 8192],
  });
});

test('max_model_len is null while no engine has said (no picker, or none scraped yet), as vLLM writes a card without one', () => {
  for (const card of Object.values(cards(undefined))) assert.equal(card[2], null);
  const one = modelsAnswer(config, newContext('GET', '/v1/models/alias', {}, undefined), 1, { contextWindow: () => undefined });
  assert.deepEqual(JSON.parse(String(one.body)), { id: 'alias', object: 'model', created: 1, owned_by: 'tollgate', root: 'base', parent: null, max_model_len: null, pool: 'a' });
});
