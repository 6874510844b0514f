import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extprocJsonPath } from './bench.js';

test('bench overhead writes its ext_proc comparison beside its results, never over them', () => {
  const cases: [json: string, extproc: string][] = [
    ['bench/results/overhead.json', 'bench/results/overhead-extproc.json'],
    // Before: unchanged, so the comparison overwrote the results.
    ['overhead-results', 'overhead-results-extproc.json'],
    ['runs/v1.2/overhead.txt', 'runs/v1.2/overhead.txt-extproc.json'],
  ];
  for (const [json, extproc] of cases) assert.equal(extprocJsonPath(json), extproc);
});
