// `tollgate sim`: N simulated vLLM-compatible servers on consecutive ports, until SIGINT/SIGTERM.
import { Command, InvalidArgumentError, Option } from 'commander';
import { listenFailureReason } from '../gateway/listen.js';
import { parseDuration } from '../lib/duration.js';
import type { SimFleet, SimFleetOptions } from '../sim/index.js';
import { SIM_DEFAULTS, simOptionsProblem } from '../sim/options.js';
import { flagFailure, parsePort, parsePositiveInt, parsePositiveNumber, untilSignal } from './options.js';

function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a non-negative integer`);
  return n;
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`"${value}" is not a fraction between 0 and 1`);
  return n;
}

/** "200ms", "1.5s", or a plain number of milliseconds. */
function parseMs(value: string): number {
  const plain = Number(value);
  if (value.trim() !== '' && Number.isFinite(plain) && plain >= 0) return plain;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function parseNames(value: string): string[] {
  const names = value.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new InvalidArgumentError(`"${value}" is not a comma-separated list of names`);
  return names;
}

/**
 * A simulated fleet on the ports `flag` chose (sim's --port, demo's --sim-port): a port it cannot listen on (taken,
 * not permitted) is that flag's to answer for, in one line as serve says it of its ports, exit code 2.
 */
export async function startFleetOn(flag: string, options: SimFleetOptions): Promise<SimFleet> {
  const { startSimFleet } = await import('../sim/fleet.js');
  try {
    return await startSimFleet(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.syscall !== 'listen') throw err;
    throw flagFailure(`${flag}: cannot listen on ${e.address}:${e.port}: ${listenFailureReason(e)}`);
  }
}

export function simCommand(): Command {
  return new Command('sim')
    .description('run simulated vLLM-compatible model servers (OpenAI API, vLLM metrics) on consecutive ports')
    .option('--replicas <n>', 'number of servers', parsePositiveInt, 1)
    .option('--port <port>', 'first port; replica i listens on port + i (0 picks free ports)', parsePort, 8000)
    .addOption(
      new Option('--model <names>', 'served model name(s), comma-separated; the first is the base model')
        .argParser(parseNames)
        .default([SIM_DEFAULTS.model], SIM_DEFAULTS.model),
    )
    .option('--lora <names>', 'LoRA adapters on the base model, comma-separated', parseNames)
    .option('--time-scale <x>', 'divide every simulated duration by x (1 = real time)', parsePositiveNumber, SIM_DEFAULTS.timeScale)
    .option('--seed <s>', 'seed for generated text, lengths and faults', parseNonNegativeInt, SIM_DEFAULTS.seed)
    .option('--max-num-seqs <n>', 'most sequences in the running batch', parsePositiveInt, SIM_DEFAULTS.maxNumSeqs)
    .option('--max-queue <n>', 'most waiting requests; beyond it requests get 429', parseNonNegativeInt, SIM_DEFAULTS.maxQueue)
    .option('--kv-blocks <n>', 'KV-cache blocks of 16 tokens', parsePositiveInt, SIM_DEFAULTS.kvBlocks)
    .option('--max-batched-tokens <n>', 'prompt tokens prefilled per step', parsePositiveInt, SIM_DEFAULTS.maxBatchedTokens)
    .option('--max-model-len <n>', 'context length (prompt + output tokens)', parsePositiveInt, SIM_DEFAULTS.maxModelLen)
    .option('--max-output-tokens <n>', 'cap on drawn output lengths when a request sets no max_tokens', parsePositiveInt, SIM_DEFAULTS.maxOutputTokens)
    .option('--max-loras <n>', 'LoRA adapters resident at once', parsePositiveInt, SIM_DEFAULTS.maxLoras)
    .addOption(
      new Option('--lora-load-time <duration>', 'time to load an adapter (e.g. 200ms, or plain milliseconds)')
        .argParser(parseMs)
        .default(SIM_DEFAULTS.loraLoadMs, `${SIM_DEFAULTS.loraLoadMs}ms`),
    )
    .option('--error-rate <fraction>', 'fraction of requests answered 500', parseFraction, 0)
    .option('--latency-spike-rate <fraction>', 'fraction of requests delayed by --latency-spike-ms', parseFraction, 0)
    .addOption(
      new Option('--latency-spike-ms <duration>', 'length of a latency spike, simulated (e.g. 1s, or plain milliseconds)')
        .argParser(parseMs)
        .default(1000, '1s'),
    )
    .option('--die-after <n>', 'each server dies when request n+1 arrives', parseNonNegativeInt)
    .option('--die-mid-stream <chunks>', 'a dead server still takes requests but cuts streams after <chunks> chunks', parseNonNegativeInt)
    .action(async (opts, cmd: Command) => {
      if (opts.port !== 0 && opts.port + opts.replicas - 1 > 65535) {
        cmd.error(`--port ${opts.port} with --replicas ${opts.replicas} runs past port 65535`, { exitCode: 2 });
      }
      const problem = simOptionsProblem(opts);
      if (problem !== undefined) cmd.error(problem, { exitCode: 2 });
      const fleet = await startFleetOn('--port', {
        replicas: opts.replicas,
        port: opts.port,
        model: opts.model,
        loras: opts.lora,
        timeScale: opts.timeScale,
        seed: opts.seed,
        maxNumSeqs: opts.maxNumSeqs,
        maxQueue: opts.maxQueue,
        kvBlocks: opts.kvBlocks,
        maxBatchedTokens: opts.maxBatchedTokens,
        maxModelLen: opts.maxModelLen,
        maxOutputTokens: opts.maxOutputTokens,
        maxLoras: opts.maxLoras,
        loraLoadMs: opts.loraLoadTime,
        errorRate: opts.errorRate,
        latencySpikeRate: opts.latencySpikeRate,
        latencySpikeMs: opts.latencySpikeMs,
        dieAfter: opts.dieAfter,
        dieMidStream: opts.dieMidStream,
      });
      process.stdout.write(fleet.urls.map((url) => `${url}\n`).join(''));
      await untilSignal();
      await fleet.close();
    });
}
