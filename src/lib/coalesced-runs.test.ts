import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescedRuns } from './coalesced-runs.js';

/** A task whose runs wait until the test ends them: `runs[i]` is the i-th run's signal and its end. */
function heldTask() {
  const runs: { overtaken: AbortSignal; end: (value: number) => void; fail: (err: Error) => void }[] = [];
  let active = 0;
  let mostActive = 0;
  const task = (overtaken: AbortSignal) =>
    new Promise<number>((resolve, reject) => {
      mostActive = Math.max(mostActive, ++active);
      const done = () => active--;
      runs.push({ overtaken, end: (v) => (done(), resolve(v)), fail: (e) => (done(), reject(e)) });
    });
  return { runs, task, mostActive: () => mostActive };
}

const turn = () => new Promise((r) => setImmediate(r));

test('a request made during a run aborts it and is served by one next run, shared by every request made meanwhile', async () => {
  const { runs, task, mostActive } = heldTask();
  const runner = new CoalescedRuns(task);
  const first = runner.run();
  assert.equal(runs.length, 1);
  const second = runner.run();
  const third = runner.run();
  assert.equal(second, third, 'one next run for both');
  assert.equal(runs[0].overtaken.aborted, true);
  await turn();
  assert.equal(runs.length, 1, 'the next run waits for the one under way');
  runs[0].end(1);
  assert.equal(await first, 1);
  await turn();
  assert.equal(runs.length, 2);
  assert.equal(runs[1].overtaken.aborted, false);
  runs[1].end(2);
  assert.equal(await second, 2);
  assert.equal(mostActive(), 1);
  // Idle again: a request starts a run at once.
  const fourth = runner.run();
  assert.equal(runs.length, 3);
  runs[2].end(3);
  assert.equal(await fourth, 3);
});

test('a run that fails still lets the next one start; settled() waits for both', async () => {
  const { runs, task } = heldTask();
  const runner = new CoalescedRuns(task);
  const first = runner.run();
  const second = runner.run();
  let settled = false;
  const whenSettled = runner.settled().then(() => (settled = true));
  runs[0].fail(new Error('boom'));
  await assert.rejects(first, /boom/);
  await turn();
  assert.equal(settled, false);
  runs[1].end(2);
  assert.equal(await second, 2);
  await whenSettled;
});

test('abort() tells the run under way without queueing another', async () => {
  const { runs, task } = heldTask();
  const runner = new CoalescedRuns(task);
  const first = runner.run();
  runner.abort();
  assert.equal(runs[0].overtaken.aborted, true);
  runs[0].end(1);
  await first;
  await runner.settled();
  assert.equal(runs.length, 1);
});
