// `tollgate bench overhead|routing|decision|sanitize|semantic-cache`: the benchmarks; each prints a table and writes JSON (and most an SVG chart).
// Each loads its harness when it runs, so other commands (serve above all) do not load autocannon and the harnesses.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { WORKLOADS, type WorkloadName } from '../../bench/workloads.js';
import { DEFAULT_STRATEGIES, STRATEGY_NAMES, type StrategyName } from '../../bench/routing-strategies.js';
import { parsePositiveInt, parsePositiveNumber } from './options.js';
import { redisUrlProblem } from '../store/redis-target.js';

/**
 * Where `bench overhead` writes its ext_proc comparison, beside its own results: `overhead.json` →
 * `overhead-extproc.json`. A name without `.json` gets `-extproc.json` appended: replacing the extension alone left
 * it unchanged, and the comparison overwrote the minutes of results written there.
 */
export function extprocJsonPath(json: string): string {
  return json.replace(/(\.json)?$/, '-extproc.json');
}

export function benchCommand(): Command {
  const bench = new Command('bench').description('run a benchmark');
  bench
    .command('overhead')
    .description('proxy overhead: direct vs bare Node proxy vs tollgate (vs nginx when installed), same run')
    .option('--duration <s>', 'seconds at saturation, and again at the fixed rate, per scenario and round', parsePositiveInt, 5)
    .option('--rounds <n>', 'rounds per scenario: each round measures every scenario at saturation, then at the fixed rate', parsePositiveInt, 3)
    .option('--connections <n>', 'concurrent connections at saturation', parsePositiveInt, 32)
    .option('--rate <n>', 'fixed request rate for the latency measurement', parsePositiveInt, 1000)
    .option('--json <file>', 'write results as JSON', 'bench/results/overhead.json')
    .option('--svg <file>', 'write a chart', 'bench/results/overhead.svg')
    .option('--no-extproc', 'skip the out-of-process (ext_proc) comparison')
    .option('--redis <url>', 'also the full chain with its counters in this Redis (any form serve takes; keys under a prefix of the run, deleted after)')
    .action(async (opts, cmd: Command) => {
      checkOutputs(cmd, [opts.json, opts.svg, opts.extproc ? extprocJsonPath(opts.json) : undefined]);
      if (opts.redis !== undefined) {
        const problem = redisUrlProblem(opts.redis);
        if (problem) cmd.error(`tollgate bench overhead: --redis: ${problem}`, { exitCode: 2 });
      }
      await (await import('../../bench/overhead.js')).benchOverhead(opts);
      if (opts.extproc) {
        process.stdout.write('\nThe policy decision point in another process, over ext_proc, against in-process (same run):\n');
        await (await import('../../bench/extproc-overhead.js')).benchExtprocOverhead({ duration: opts.duration, rounds: opts.rounds, connections: opts.connections, rate: Math.min(opts.rate, 300), json: extprocJsonPath(opts.json) });
      }
    });
  bench
    .command('routing')
    .description('routing strategies (round-robin, least-requests, tollgate; round-robin behind flow control on request) on a time-scaled simulated fleet, several workloads')
    .option('--quick', 'two rates per workload over windows half as long (≤ 90 s)')
    .option('--virtual', "the gateway's pool state and the engines in this process on a virtual clock: the routing policy alone, without HTTP or event-loop lag, in seconds")
    .option('--workloads <list>', `comma-separated, of ${WORKLOADS.join(', ')}`, listOf<WorkloadName>('workload(s)', WORKLOADS))
    .option(
      '--strategies <list>',
      `comma-separated, of ${STRATEGY_NAMES.join(', ')} (round-robin always runs; default ${DEFAULT_STRATEGIES.join(', ')})`,
      listOf<StrategyName>('strategy(ies)', STRATEGY_NAMES),
    )
    .option('--json <file>', 'write results as JSON', 'bench/results/routing.json')
    .option('--svg <file>', 'write a chart', 'bench/results/routing.svg')
    .option('--time-scale <x>', 'simulated seconds per real second', parsePositiveNumber)
    .option('--endpoints <n>', 'simulated endpoints', parsePositiveInt, 8)
    .option('--seed <n>', 'seed of the workloads and the simulators', parsePositiveInt, 1)
    .action(async (opts, cmd: Command) => {
      checkOutputs(cmd, [opts.json, opts.svg]);
      await (await import('../../bench/routing.js')).benchRouting(opts);
    });
  bench
    .command('decision')
    .description('time of one endpoint-picker decision on a 64-endpoint pool')
    .option('--endpoints <n>', 'endpoints in the pool', parsePositiveInt, 64)
    .option('--iterations <n>', 'timed decisions', parsePositiveInt, 20_000)
    .option('--json <file>', 'write results as JSON', 'bench/results/decision.json')
    .action(async (opts, cmd: Command) => {
      checkOutputs(cmd, [opts.json]);
      const [{ benchDecision, DECISION_P99_TARGET_US }, { writeJson }] = await Promise.all([import('../../bench/decision.js'), import('../../bench/report.js')]);
      const r = await benchDecision({ endpoints: opts.endpoints, iterations: opts.iterations });
      const met = r.p99Us < DECISION_P99_TARGET_US;
      console.log(`decision on ${r.endpoints} endpoints (${r.iterations} picks): p50 ${r.p50Us} µs, p90 ${r.p90Us} µs, p99 ${r.p99Us} µs, mean ${r.meanUs} µs`);
      console.log(`target p99 < ${DECISION_P99_TARGET_US} µs: ${met ? 'met' : 'missed'}`);
      if (opts.json) writeJson(opts.json, { bench: 'decision', at: new Date().toISOString(), node: process.version, ...r, targetP99Us: DECISION_P99_TARGET_US, met });
    });
  bench
    .command('sanitize')
    .description('precision and recall of the prompt/response sanitizers on the labelled prompts in bench/data')
    .option('--json <file>', 'write results as JSON', 'bench/results/sanitize.json')
    .option('--show-mistakes', 'print every misclassified prompt')
    .action(async (opts, cmd: Command) => {
      checkOutputs(cmd, [opts.json]);
      await (await import('../../bench/sanitize-eval.js')).benchSanitize({ json: opts.json, showMistakes: opts.showMistakes });
    });
  bench
    .command('semantic-cache')
    .description('a semantic-cache hit against the simulated model, through the gateway (real time)')
    .option('--questions <n>', 'questions asked', parsePositiveInt, 10)
    .option('--max-tokens <n>', 'answer length asked of the model', parsePositiveInt, 128)
    .option('--json <file>', 'write results as JSON', 'bench/results/semantic-cache.json')
    .action(async (opts, cmd: Command) => {
      checkOutputs(cmd, [opts.json]);
      await (await import('../../bench/semantic-cache.js')).benchSemanticCache({ questions: opts.questions, maxTokens: opts.maxTokens, json: opts.json });
    });
  return bench;
}

/**
 * Where a benchmark writes its results must take them before it measures: one run in a directory it could not write
 * (the default bench/results/ is relative to the working directory) measured for minutes, then lost every figure.
 */
function checkOutputs(cmd: Command, files: (string | undefined)[]): void {
  for (const file of files) {
    if (!file) continue;
    try {
      mkdirSync(dirname(file), { recursive: true });
      accessSync(existsSync(file) ? file : dirname(file), constants.W_OK);
    } catch (err) {
      cmd.error(`tollgate: cannot write the results to ${file}: ${(err as Error).message} (--json, --svg)`, { exitCode: 2, code: 'tollgate.output' });
    }
  }
}

/** A parser of comma-separated names out of `known`. */
function listOf<T extends string>(what: string, known: readonly T[]): (value: string) => T[] {
  return (value) => {
    const names = value.split(',').map((v) => v.trim());
    const unknown = names.filter((n) => !(known as readonly string[]).includes(n));
    if (unknown.length > 0) throw new InvalidArgumentError(`unknown ${what} ${unknown.join(', ')} (known: ${known.join(', ')})`);
    return names as T[];
  };
}
