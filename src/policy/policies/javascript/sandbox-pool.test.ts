// The sandbox pool when its watchdog has to terminate a worker: the script that needed it pays, not the others — the
// worker's place is taken at once by a ready one, and that script's later runs keep off the workers others use.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxPool, type SandboxError } from './sandbox-pool.js';
import type { ScriptRef } from './sandbox-protocol.js';

const INPUT = JSON.stringify({ flow: 'request', variables: {}, request: { method: 'POST', path: '/', url: '/', headers: {}, body: {} } });
const script = (id: string, source: string): ScriptRef => ({ id, source, memoryLimitBytes: 16 * 1024 * 1024 });
/** One long native call: QuickJS checks its interrupt only between bytecodes, so only the watchdog ends the run. */
const STUCK = script('stuck-in-native-code', "var h = 'a'.repeat(4e6); h.indexOf('a'.repeat(4e5) + 'b');");
const STUCK_LIMIT_MS = 10;
/** Counts its runs in its globals; `copy` tells apart the copies compiled in different workers. */
const counter = (id: string) =>
  script(id, "globalThis.copy = globalThis.copy || String(Math.random()); globalThis.n = (globalThis.n || 0) + 1; context.setVariable('copy', globalThis.copy); context.setVariable('n', globalThis.n);");

async function count(pool: SandboxPool, ref: ScriptRef): Promise<{ copy: string; n: number }> {
  const { variables } = JSON.parse(await pool.run(ref, 5000, INPUT)) as { variables: { copy: string; n: string } };
  return { copy: variables.copy, n: Number(variables.n) };
}

describe('a script that needs the watchdog', () => {
  // Two shared workers, as on a host with up to 3 CPUs.
  const pool = new SandboxPool(2);

  test('the worker it held is replaced by a ready one: the next two runs go to two workers at once', async () => {
    await pool.ready();
    await assert.rejects(pool.run(STUCK, STUCK_LIMIT_MS, INPUT), (err: SandboxError) => err.kind === 'timeout');
    // Queued together while both places hold a ready worker, each run takes one; a place left waiting for a new
    // worker would send both to the other.
    const copies = await Promise.all([count(pool, counter('counter-a')), count(pool, counter('counter-a'))]);
    assert.equal(new Set(copies.map((c) => c.copy)).size, 2, JSON.stringify(copies));
  });

  test('run again and again, it neither wipes the globals of another script nor holds it up for more than one run', async () => {
    await assert.rejects(pool.run(STUCK, STUCK_LIMIT_MS, INPUT), (err: SandboxError) => err.kind === 'timeout');
    await pool.ready();
    // The other script compiled in both workers, then run while the stuck one keeps two runs in flight.
    const other = counter('counter-b');
    const last = new Map<string, number>();
    for (const c of await Promise.all([count(pool, other), count(pool, other)])) last.set(c.copy, c.n);
    let stop = false;
    const stuckOutcomes: string[] = [];
    const flood = Array.from({ length: 2 }, async () => {
      while (!stop) stuckOutcomes.push(await pool.run(STUCK, STUCK_LIMIT_MS, INPUT).then(() => 'ran', (err: SandboxError) => err.kind));
    });
    try {
      for (let runs = 0; stuckOutcomes.length < 3; runs++) {
        const settledBefore = stuckOutcomes.length;
        const c = await count(pool, other);
        assert.ok(last.has(c.copy), `run ${runs}: a new copy of the other script, the globals of its copies were lost`);
        assert.equal(c.n, last.get(c.copy)! + 1, `run ${runs}: its counter`);
        last.set(c.copy, c.n);
        assert.ok(stuckOutcomes.length - settledBefore <= 1, `run ${runs} waited for ${stuckOutcomes.length - settledBefore} stuck runs`);
        await sleep(20);
      }
    } finally {
      stop = true;
      await Promise.all(flood);
    }
    // The stuck script is still served, each run ended by the watchdog.
    assert.deepEqual(new Set(stuckOutcomes), new Set(['timeout']));
  });
});

test('a run whose answer waits behind a stalled main thread is not taken for stuck: it succeeds, and its script keeps both workers', async () => {
  // Idle workers are unref'd: nothing to close.
  const pool = new SandboxPool(2);
  await pool.ready();
  const healthy = counter('healthy');
  // The main thread busy (a GC pause, a large synchronous parse) past the time limit and the watchdog's grace while
  // the run is out, as in a request handler: timers run before the poll phase that would deliver the answer.
  const outcome = await new Promise<Promise<string>>((resolve) =>
    setImmediate(() => {
      const run = pool.run(healthy, 100, INPUT).then(() => 'ok', (err: SandboxError) => err.kind);
      const until = Date.now() + 400;
      while (Date.now() < until);
      resolve(run);
    }),
  );
  assert.equal(outcome, 'ok');
  // Not confined to the spare: two runs queued together still go to two workers.
  const copies = await Promise.all([count(pool, healthy), count(pool, healthy)]);
  assert.equal(new Set(copies.map((c) => c.copy)).size, 2, JSON.stringify(copies));
});
