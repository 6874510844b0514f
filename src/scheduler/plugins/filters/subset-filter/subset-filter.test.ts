import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { SUBSET_FILTER, subsetFilter } from './subset-filter.js';

describe(SUBSET_FILTER, () => {
  const filter = subsetFilter(SUBSET_FILTER, {}, deps());
  const eps = [endpoint(1), endpoint(2), endpoint(3)];
  const cases: { name: string; subset?: string[]; want: number[] }[] = [
    { name: 'no hint: all', want: [0, 1, 2] },
    { name: 'hint: only those', subset: ['10.0.0.1:8000', '10.0.0.3:8000', '10.9.9.9:1'], want: [0, 2] },
    { name: 'hint matching none: none', subset: ['10.9.9.9:1'], want: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = filter.filter(ctx({ subset: c.subset ? new Set(c.subset) : undefined }), eps);
      assert.deepEqual(got.map((ep) => eps.indexOf(ep)), c.want);
    });
  }
});
