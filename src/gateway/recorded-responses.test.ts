import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../lib/logger.js';
import { MISS_REUSE_MS, RecordedResponses } from './recorded-responses.js';
import type { RecordedResponse } from './stored-responses.js';

/** A records table whose queries answer only when the test says: `sent` lists the ids asked, in order. */
function stalledRecords() {
  const sent: string[] = [];
  const answers = new Map<string, (r: RecordedResponse | undefined) => void>();
  const find = (id: string) => {
    sent.push(id);
    return new Promise<RecordedResponse | undefined>((resolve) => answers.set(id, resolve));
  };
  const answer = (id: string, r?: RecordedResponse) => {
    answers.get(id)!(r);
    answers.delete(id);
  };
  /** Answers every query, those sent as slots free up too, until none is left. */
  const drain = async () => {
    while (answers.size > 0) {
      for (const id of [...answers.keys()]) answer(id);
      await sleep(0);
    }
  };
  return { sent, find, answer, drain };
}

const RECORD: RecordedResponse = { endpoint: '10.0.0.1:8000', app_id: 'A', model: 'm', input_tokens: 3, output_tokens: 2 };

describe('RecordedResponses', () => {
  test("one app's flood of unknown ids waits behind its own lookups: another app's goes out with the next free slot", async () => {
    const { sent, find, answer, drain } = stalledRecords();
    const records = new RecordedResponses(find, silentLogger);
    const flood = Array.from({ length: 30 }, (_, i) => records.find(`resp_a${i}`, 'app:A'));
    await sleep(0);
    assert.equal(sent.length, 8, 'queries at once are bounded');
    const own = records.find('resp_b', 'app:B');
    answer('resp_a0');
    answer('resp_a1');
    await sleep(0);
    // Before: the ninth lookup at once failed, and the owner's read of its own response was a 503.
    assert.deepEqual(sent.slice(8), ['resp_a8', 'resp_b'], "B's lookup took its turn at the slots A's queries freed, ahead of A's 21 waiting");
    answer('resp_b', RECORD);
    assert.deepEqual(await own, { recorded: RECORD, failed: false });
    await drain();
    for (const r of await Promise.all(flood)) assert.equal(r.failed, false);
  });

  test("past its share of the waiting room an app's lookups fail at once; another app's still wait their turn", async () => {
    const { sent, find, answer, drain } = stalledRecords();
    const records = new RecordedResponses(find, silentLogger);
    const waiting = Array.from({ length: 8 + 64 }, (_, i) => records.find(`resp_a${i}`, 'app:A'));
    assert.deepEqual(await records.find('resp_a_more', 'app:A'), { recorded: undefined, failed: true });
    const other = records.find('resp_b', 'app:B');
    answer('resp_a0');
    answer('resp_a1');
    await sleep(0);
    assert.equal(sent.at(-1), 'resp_b');
    answer('resp_b');
    assert.deepEqual(await other, { recorded: undefined, failed: false });
    await drain();
    await Promise.all(waiting);
  });

  test('a full waiting room still lets another app in: its lookup takes the place of the newest of the app holding most', async () => {
    const { find, drain } = stalledRecords();
    const records = new RecordedResponses(find, silentLogger);
    // 8 running, then 16 apps × 64 waiting: the room of 1,024 is full.
    const running = Array.from({ length: 8 }, (_, i) => records.find(`resp_r${i}`, 'app:R'));
    const waiting = Array.from({ length: 16 * 64 }, (_, i) => records.find(`resp_${i % 16}_${i}`, `app:${i % 16}`));
    await sleep(0);
    const late = records.find('resp_late', 'app:late');
    // Before: failed at once, as though the late app had used up its own share.
    const first = await Promise.race([late.then(() => 'late answered'), ...waiting.map((w, i) => w.then((r) => (r.failed ? `displaced ${i}` : 'answered')))]);
    assert.match(first, /^displaced \d+$/, 'the newest lookup of an app holding most of the room failed in its place');
    await drain();
    assert.deepEqual(await late, { recorded: undefined, failed: false });
    const failed = (await Promise.all(waiting)).filter((r) => r.failed).length;
    assert.equal(failed, 1, 'one lookup displaced, no more');
    await Promise.all(running);
  });

  test('a query still counts until it ends, though its lookup gave up on it; one that does not answer in time fails', async () => {
    const { sent, find, answer } = stalledRecords();
    const records = new RecordedResponses(find, silentLogger);
    const stalled = Array.from({ length: 8 }, (_, i) => records.find(`resp_${i}`, ''));
    for (const r of await Promise.all(stalled)) assert.deepEqual(r, { recorded: undefined, failed: true });
    // The timed-out queries run on, holding their slots: a ninth waits, and fails in its turn.
    assert.deepEqual(await records.find('resp_9', ''), { recorded: undefined, failed: true });
    assert.equal(sent.length, 8);
    for (let i = 0; i < 8; i++) answer(`resp_${i}`);
    await sleep(0);
    const after = records.find('resp_10', '');
    await sleep(0);
    assert.equal(sent.at(-1), 'resp_10', 'sent once they ended');
    answer('resp_10', RECORD);
    assert.equal((await after).recorded, RECORD);
  });

  test('an id found missing is not asked about again for a moment, however many lookups name it; a tenant shares its query under way', async () => {
    let sent = 0;
    const records = new RecordedResponses(async () => (sent++, undefined), silentLogger);
    await Promise.all([records.find('resp_x', 'app:A'), records.find('resp_x', 'app:A')]);
    assert.equal(sent, 1, "one query for a tenant's lookups at once");
    for (let i = 0; i < 20; i++) assert.deepEqual(await records.find('resp_x', `app:${i}`), { recorded: undefined, failed: false });
    assert.equal(sent, 1, 'the miss answers every app for a moment');
    // A timer may fire a fraction of a millisecond before the clock the miss was stamped on has moved on that far.
    await sleep(MISS_REUSE_MS + 5);
    await records.find('resp_x', 'app:A');
    assert.equal(sent, 2, 'then it is asked again: its record may have arrived meanwhile');
  });
});
