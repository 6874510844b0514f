// The default picker profile against round-robin on `bench routing --virtual` (the gateway's pool state in front of
// simulated engines on one manual clock): deterministic, so what the routing policy achieves can be asserted without
// timing anything on this machine. Quick sweeps: the unloaded rate and one loaded rate per workload.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchRouting, type RoutingResult } from '../bench/routing.js';

describe('routing policy on a virtual clock', () => {
  let r: RoutingResult;
  const at = (workload: string, strategy: string, rate: number) => r.points.find((p) => p.workload === workload && p.strategy === strategy && p.rate === rate)!;

  before(async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'tollgate-routing-')), 'routing.json');
    r = await benchRouting({ virtual: true, quick: true, workloads: ['shared-prefix', 'multi-lora', 'overload'], strategies: ['tollgate'], json, log: () => {}, progress: () => {} });
  });

  test('shared prefixes: prefix affinity at 18 req/s keeps TTFT p90 under half of round-robin, which is past its capacity', () => {
    const rr = at('shared-prefix', 'round-robin', 18).summary;
    const tg = at('shared-prefix', 'tollgate', 18).summary;
    assert.equal(tg.failed, 0);
    assert.ok(tg.ttftP90 <= 0.5 * rr.ttftP90, `tollgate ${tg.ttftP90} s against round-robin ${rr.ttftP90} s`);
  });

  test('multi-LoRA: adapters kept together, TTFT p90 at 30 req/s ≤ 0.5× round-robin (the issue target)', () => {
    const rr = at('multi-lora', 'round-robin', 30).summary;
    const tg = at('multi-lora', 'tollgate', 30).summary;
    assert.ok(tg.ttftP90 <= 0.5 * rr.ttftP90, `tollgate ${tg.ttftP90} s against round-robin ${rr.ttftP90} s`);
  });

  test('overload: sheddable work is shed, critical work is not, and its TTFT p99 stays within 1.5× of the same requests unloaded', () => {
    const p = at('overload', 'tollgate', 40);
    assert.ok(p.priorities.sheddable!.shed > 0);
    assert.equal(p.priorities.critical!.shed, 0);
    assert.equal(p.priorities.standard!.shed, 0);
    assert.equal(p.summary.failed, 0);
    const reference = r.criticalReferences.find((c) => c.workload === 'overload' && c.rate === 40)!;
    assert.equal(reference.summary.sent, p.priorities.critical!.sent);
    assert.ok(p.priorities.critical!.ttftP99 <= 1.5 * reference.summary.ttftP99, `critical p99 ${p.priorities.critical!.ttftP99} s, unloaded ${reference.summary.ttftP99} s`);
    // Round-robin sends everything at once and queues critical work behind the rest.
    const rr = at('overload', 'round-robin', 40).priorities.critical!;
    assert.ok(rr.ttftP99 > 3 * reference.summary.ttftP99);
  });
});
