// `tollgate bench overhead|routing`: the benchmarks; each prints a table and writes JSON and an SVG chart.
import { Command } from 'commander';
import { benchOverhead } from '../../bench/overhead.js';
import { benchExtprocOverhead } from '../../bench/extproc-overhead.js';
import { benchSanitize } from '../../bench/sanitize-eval.js';
import { benchSemanticCache } from '../../bench/semantic-cache.js';
import { parsePositiveInt } from './options.js';

export function benchCommand(): Command {
  const bench = new Command('bench').description('run a benchmark');
  bench
    .command('overhead')
    .description('proxy overhead: direct vs bare Node proxy vs tollgate (vs nginx when installed), same run')
    .option('--duration <s>', 'seconds per measurement', parsePositiveInt, 10)
    .option('--connections <n>', 'concurrent connections at saturation', parsePositiveInt, 32)
    .option('--rate <n>', 'fixed request rate for the latency measurement', parsePositiveInt, 1000)
    .option('--json <file>', 'write results as JSON', 'bench/results/overhead.json')
    .option('--svg <file>', 'write a chart', 'bench/results/overhead.svg')
    .option('--no-extproc', 'skip the out-of-process (ext_proc) comparison')
    .action(async (opts) => {
      await benchOverhead(opts);
      if (opts.extproc) {
        process.stdout.write('\nThe policy decision point in another process, over ext_proc, against in-process (same run):\n');
        await benchExtprocOverhead({ duration: opts.duration, connections: opts.connections, rate: Math.min(opts.rate, 300), json: opts.json.replace(/\.json$/, '-extproc.json') });
      }
    });
  bench
    .command('sanitize')
    .description('precision and recall of the prompt/response sanitizers on the labelled prompts in bench/data')
    .option('--json <file>', 'write results as JSON', 'bench/results/sanitize.json')
    .option('--show-mistakes', 'print every misclassified prompt')
    .action(async (opts) => {
      await benchSanitize({ json: opts.json, showMistakes: opts.showMistakes });
    });
  bench
    .command('semantic-cache')
    .description('a semantic-cache hit against the simulated model, through the gateway (real time)')
    .option('--questions <n>', 'questions asked', parsePositiveInt, 10)
    .option('--max-tokens <n>', 'answer length asked of the model', parsePositiveInt, 128)
    .option('--json <file>', 'write results as JSON', 'bench/results/semantic-cache.json')
    .action(async (opts) => {
      await benchSemanticCache({ questions: opts.questions, maxTokens: opts.maxTokens, json: opts.json });
    });
  return bench;
}
