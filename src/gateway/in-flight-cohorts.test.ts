import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightCohorts } from './in-flight-cohorts.js';

const turn = () => new Promise((r) => setImmediate(r));

/** Whether `p` has resolved after a turn of the event loop. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await turn();
  return done;
}

test('over() waits for the requests begun before it, not for later ones', async () => {
  const cohorts = new InFlightCohorts<object>();
  const [a, b, later] = [{}, {}, {}];
  cohorts.begin(a);
  cohorts.begin(b);
  const over = cohorts.over();
  cohorts.begin(later);
  cohorts.end(a);
  assert.equal(await settled(over), false, 'b is still in flight');
  cohorts.end(b);
  assert.equal(await settled(over), true, 'the later request does not hold it');
  assert.equal(await settled(cohorts.over()), false, 'the later one holds the next');
  cohorts.end(later);
});

test('with nothing in flight, over() resolves at once; an end repeated, or of a request never begun, changes nothing', async () => {
  const cohorts = new InFlightCohorts<object>();
  assert.equal(await settled(cohorts.over()), true);
  const [a, b] = [{}, {}];
  cohorts.begin(a);
  cohorts.begin(b);
  cohorts.end(a);
  cohorts.end(a);
  cohorts.end({});
  const over = cohorts.over();
  assert.equal(await settled(over), false, 'b is still in flight');
  cohorts.end(b);
  assert.equal(await settled(over), true);
});

test('a later over() also waits for an older cohort still in flight', async () => {
  const cohorts = new InFlightCohorts<object>();
  const [old, newer] = [{}, {}];
  cohorts.begin(old);
  const first = cohorts.over();
  cohorts.begin(newer);
  const second = cohorts.over();
  cohorts.end(newer);
  assert.equal(await settled(second), false, 'the older request is still in flight');
  cohorts.end(old);
  assert.equal(await settled(first), true);
  assert.equal(await settled(second), true);
});
