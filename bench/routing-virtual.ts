// bench routing's virtual-clock target (`--virtual`): the gateway's own pool state (flow control, shedding, the
// strategy's compiled profile) in front of src/sim engines, all on one manual clock in this process. No HTTP, no
// processes and no event-loop lag: what the routing policy alone does, the same on every machine, in seconds.
// The engines' /metrics pages are rendered and parsed by the same code as over HTTP, every 50 simulated ms.
import { setMaxListeners } from 'node:events';
import { Registry } from 'prom-client';
import { CRITICALITY_PRIORITY, type PoolConfig } from '../src/config/runtime-config.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { GatewayError } from '../src/gateway/errors.js';
import { silentLogger } from '../src/lib/logger.js';
import { promptLayout } from '../src/lib/prompt-layout.js';
import { compilePickerConfig } from '../src/scheduler/compile-picker-config.js';
import { readEngineMetrics } from '../src/scheduler/engine-metrics.js';
import { SchedulerMetrics } from '../src/scheduler/metrics.js';
import { PluginRegistry, registerBuiltins } from '../src/scheduler/plugin-registry.js';
import { PoolState } from '../src/scheduler/pool-state.js';
import type { Pick } from '../src/scheduler/types.js';
import { Engine, type Sequence } from '../src/sim/engine.js';
import { seededRandom } from '../src/sim/hash.js';
import { promptBlockHashes } from '../src/sim/kv-cache.js';
import { createSimMetrics, type SimMetrics } from '../src/sim/metrics.js';
import { SIM_DEFAULTS } from '../src/sim/options.js';
import { chatPrompt } from '../src/sim/prompt.js';
import { ManualClock } from '../src/sim/testing.js';
import type { Outcome } from './routing-load.js';
import { baseModelOf, parseQueueCounts, type RoutingTarget, type TargetSpec } from './routing-target.js';
import type { BenchRequest } from './workloads.js';

/** The real gateway's scrape interval and freshness bound in bench routing, in simulated ms. */
const SCRAPE_MS = 50;
const FRESHNESS_MS = 200;
/** Simulated ms per clock step: below the shortest engine step (14 ms), above nothing else that matters. */
const STEP_MS = 1;
/** Everything is cancelled at a run's drain deadline, so an idle fleet is a step away; this long means a bug. */
const SETTLE_LIMIT_MS = 600_000;

interface Running {
  pick: Pick;
  engine: Engine;
  seq: Sequence;
}

export async function startVirtualTarget(spec: TargetSpec): Promise<RoutingTarget> {
  const { workload: w } = spec;
  const clock = new ManualClock();
  // Endpoint state treats a scrape at time 0 as none.
  clock.advance(1);
  const model = baseModelOf(w);
  const loras = w.sim.loras ?? [];
  const engines: Engine[] = [];
  const pages: SimMetrics[] = [];
  for (let i = 0; i < spec.endpoints; i++) {
    const engine = new Engine({
      maxNumSeqs: spec.maxNumSeqs,
      maxQueue: SIM_DEFAULTS.maxQueue,
      maxBatchedTokens: SIM_DEFAULTS.maxBatchedTokens,
      kvBlocks: spec.kvBlocks,
      maxLoras: w.sim.maxLoras ?? SIM_DEFAULTS.maxLoras,
      loraLoadMs: SIM_DEFAULTS.loraLoadMs,
      timeScale: 1,
      clock,
    });
    engines.push(engine);
    pages.push(createSimMetrics(model, engine, loras));
  }
  const base = DEFAULT_SETTINGS.scheduler;
  // The flow-control wait limit runs on a real timer: far enough that a virtual run (seconds) never reaches it.
  const settings = { ...base, scrapeInterval: SCRAPE_MS, saturation: { ...base.saturation, metricsFreshness: FRESHNESS_MS }, flowControl: { ...base.flowControl, maxWait: 3_600_000 } };
  const pool: PoolConfig = {
    name: 'pool',
    engine: 'vllm',
    endpoints: engines.map((_, i) => ({ url: `http://10.0.0.${i}:8000`, address: `10.0.0.${i}:8000` })),
    picker: spec.picker,
  };
  const pipeline = compilePickerConfig(spec.picker, {
    registry: registerBuiltins(new PluginRegistry()),
    deps: { settings, random: seededRandom(spec.seed), observePrefixHitRatio: () => {} },
  });
  const registry = new Registry();
  // Read at collection time only, when poolState is there.
  const metrics = new SchedulerMetrics(registry, (): PoolState[] => [poolState], () => settings.scrapeInterval);
  const poolState: PoolState = new PoolState(pool, { pipeline, key: 'bench' }, { settings, logger: silentLogger, metrics, now: () => clock.now() });
  const engineOf = new Map(poolState.endpoints.map((ep, i) => [ep.address, engines[i]]));
  const models = new Map(w.models.map((m) => [m.name, { target: m.target, priority: CRITICALITY_PRIORITY[m.criticality ?? 'Standard'] }]));
  const running = new Set<Running>();
  let nextScrape = clock.now();

  async function scrape(): Promise<void> {
    const texts = await Promise.all(pages.map((p) => p.page()));
    const now = clock.now();
    poolState.endpoints.forEach((ep, i) => {
      ep.recordScrape(readEngineMetrics('vllm', texts[i]), now);
      poolState.scraped(ep);
    });
  }

  /** One step of simulated time: scrapes when due, fires the engines' timers, lets settled picks run. */
  async function step(): Promise<void> {
    if (clock.now() >= nextScrape) {
      await scrape();
      nextScrape += SCRAPE_MS;
    }
    clock.advance(STEP_MS);
    // Picks that waited in flow control resolve as promises: let them, and what they start, run now.
    for (let i = 0; i < 4; i++) await Promise.resolve();
  }

  function send(req: BenchRequest, start: number, outcome: Outcome, signal: AbortSignal, firstTokenOnly: boolean, done: () => void): void {
    const m = models.get(req.model)!;
    const finish = (status: number) => {
      outcome.status = status;
      done();
    };
    const dispatch = (pick: Pick) => {
      const endpoint = pick.endpoints[0];
      const engine = engineOf.get(endpoint.address)!;
      const lora = loras.includes(m.target) ? m.target : undefined;
      const prompt = chatPrompt(req.messages);
      const seq = engine.submit({
        lora,
        promptTokens: prompt.count,
        blockHashes: promptBlockHashes(lora ?? model, prompt.tokens),
        outputTokens: req.maxTokens,
        onToken: (index) => {
          if (index > 0) return;
          outcome.ttft = (clock.now() - start) / 1000;
          if (!firstTokenOnly) return;
          // The client hangs up: the engine drops the sequence, the gateway releases the pick; the request ended there.
          outcome.e2e = outcome.ttft;
          running.delete(entry);
          engine.cancel(seq!);
          pick.release(endpoint, { reached: true, status: 200 });
          finish(200);
        },
        onFinish: () => {
          // After submit has returned: entry is set by then.
          running.delete(entry);
          outcome.e2e = (clock.now() - start) / 1000;
          outcome.outputTokens = req.maxTokens;
          pick.release(endpoint, { reached: true, status: 200, outputTokens: req.maxTokens });
          finish(200);
        },
      });
      if (!seq) {
        // The engine's waiting queue is full: the server answers 429 at once. (The proxy would try the next endpoint;
        // with 1,024 places per engine no workload here gets that far, so this is counted as the answer.)
        pick.release(endpoint, { reached: true, status: 429 });
        finish(429);
        return;
      }
      const entry: Running = { pick, engine, seq };
      running.add(entry);
    };
    const decided = poolState.pick({ pool, targetModel: m.target, prompt: promptLayout(req.messages), priority: m.priority, fairnessId: '', signal });
    // A request still queued at the drain deadline is aborted (the client went away): it stays unfinished.
    if (decided instanceof Promise) decided.then(dispatch, (err: unknown) => signal.aborted || finish(err instanceof GatewayError ? err.status : 500));
    else dispatch(decided);
  }

  return {
    async replay(requests, onProgress, opts) {
      const start = clock.now();
      const outcomes: Outcome[] = [];
      const abort = new AbortController();
      // Every queued pick listens for the deadline on this one signal.
      setMaxListeners(Infinity, abort.signal);
      let done = 0;
      for (const req of requests) {
        const outcome: Outcome = { priority: req.priority, status: 0, ttft: NaN, e2e: NaN, outputTokens: 0 };
        outcomes.push(outcome);
        clock.setTimer(() => send(req, clock.now(), outcome, abort.signal, opts?.firstTokenOnly ?? false, () => done++), req.at * 1000 - (clock.now() - start));
      }
      const last = requests.length > 0 ? requests[requests.length - 1].at * 1000 : 0;
      const deadline = start + last + spec.drainSeconds * 1000;
      let steps = 0;
      while ((done < requests.length || clock.now() - start <= last) && clock.now() < deadline) {
        await step();
        if (++steps % 1000 === 0) onProgress(done, requests.length);
      }
      // Still open at the deadline: failed, as the real load generator counts them; the client goes away.
      abort.abort();
      for (const r of running) {
        r.engine.cancel(r.seq);
        r.pick.release(r.pick.endpoints[0], { reached: false, abandoned: true });
      }
      running.clear();
      for (const o of outcomes) if (o.status === 0) o.status = -1;
      return outcomes;
    },
    queueCounts: async () => parseQueueCounts(await registry.metrics()),
    async settle() {
      await scrape();
      const limit = clock.now() + SETTLE_LIMIT_MS;
      while (poolState.view().queueLength > 0 || engines.some((e) => e.waitingCount + e.runningCount > 0)) {
        if (clock.now() > limit) throw new Error(`the fleet was still busy ${SETTLE_LIMIT_MS / 1000} simulated s after a run`);
        await step();
      }
      await scrape();
    },
    async stop() {
      poolState.close(new Error('the benchmark is over'));
      for (const e of engines) e.close();
    },
  };
}
