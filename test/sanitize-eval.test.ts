// The sanitizer evaluation's arithmetic on a tiny fixture (not the detectors' scores), and that the labelled set loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVAL_CATEGORIES, evaluate, loadLabelled, score, type EvalCategory, type LabelledPrompt } from '../bench/sanitize-eval.js';

const FIXTURE: LabelledPrompt[] = [
  { text: 'a', labels: ['pii'] },
  { text: 'b', labels: ['pii', 'secret'] },
  { text: 'c', labels: [] },
  { text: 'd', labels: ['injection'] },
  { text: 'e', labels: [] },
];
/** pii found in a and c (c wrongly), secret in b, injection nowhere, url wrongly in e. */
const PREDICTED: Record<string, EvalCategory[]> = { a: ['pii'], b: ['secret'], c: ['pii'], d: [], e: ['url'] };

test('per category, micro-averaged and prompt-level figures', () => {
  const r = evaluate(FIXTURE, (t) => new Set(PREDICTED[t]));
  assert.equal(r.prompts, 5);
  assert.deepEqual(r.perCategory.pii, { tp: 1, fp: 1, fn: 1, precision: 0.5, recall: 0.5, f1: 0.5 });
  assert.deepEqual(r.perCategory.secret, { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 });
  assert.deepEqual(r.perCategory.injection, { tp: 0, fp: 0, fn: 1, precision: null, recall: 0, f1: null });
  assert.deepEqual(r.perCategory.url, { tp: 0, fp: 1, fn: 0, precision: 0, recall: null, f1: null });
  // Micro: tp 2, fp 2, fn 2.
  assert.deepEqual(r.overall, { tp: 2, fp: 2, fn: 2, precision: 0.5, recall: 0.5, f1: 0.5 });
  // Prompt level: a, b flagged and labelled; c, e flagged but clean; d labelled but missed.
  assert.deepEqual(r.flagged, score(2, 2, 1));
  assert.deepEqual(r.mistakes.map((m) => m.text), ['b', 'c', 'd', 'e']);
});

test('F1 is the harmonic mean', () => {
  const s = score(3, 1, 3);
  assert.equal(s.precision, 0.75);
  assert.equal(s.recall, 0.5);
  assert.equal(s.f1, 0.6);
});

test('the labelled set loads: over 300 prompts, known labels, no key-shaped text left unexpanded', () => {
  const items = loadLabelled();
  assert.ok(items.length >= 300);
  for (const i of items) {
    for (const l of i.labels) assert.ok(EVAL_CATEGORIES.includes(l));
    assert.doesNotMatch(i.text, /\{\{\w+\}\}/);
  }
  assert.ok(items.some((i) => i.split === 'holdout') && items.some((i) => i.split === 'tuning'));
});
