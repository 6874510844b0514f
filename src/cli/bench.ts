// `tollgate bench overhead|routing`: the benchmarks; each prints a table and writes JSON and an SVG chart.
import { Command } from 'commander';
import { benchOverhead } from '../../bench/overhead.js';
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
    .action(async (opts) => {
      await benchOverhead(opts);
    });
  return bench;
}
