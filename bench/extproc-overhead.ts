// What the out-of-process path costs: tollgate's data plane calling tollgate's policy decision point over ext_proc
// (two processes, loopback gRPC) against the same policy chain in process, measured in turns over rounds
// (bench/in-turns.ts). Throughput at saturation (autocannon) and p50/p99 at a fixed rate; `bench overhead` runs it
// after its own table.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inTurns, medianRatio } from './in-turns.js';
import { addedLatency, failureReport, measureRound, roundColumns, run } from './overhead.js';
import type { Chain } from './overhead-chains.js';
import { keysOf, startChild, type Child } from './processes.js';
import { table, writeJson, type Row } from './report.js';

export interface ExtprocOverheadOptions {
  /** Seconds of each round's saturation and of its fixed-rate measurement. */
  duration: number;
  /** Rounds per path, taken in turns (bench/in-turns.ts). */
  rounds: number;
  connections: number;
  /** Requests per second of the fixed-rate latency measurement. */
  rate: number;
  /** The policy chain both paths run (default: what defaultSecurityEnabled turns on). */
  chain?: Chain;
  json?: string;
  log?: (line: string) => void;
}


/**
 * @example
 * const rows = await benchExtprocOverhead({ duration: 5, rounds: 3, connections: 64, rate: 500 });
 * // rows[1].vs_in_process: throughput of the ext_proc path as a share of the in-process one
 */
export async function benchExtprocOverhead(o: ExtprocOverheadOptions): Promise<Row[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ext = extname(fileURLToPath(import.meta.url));
  const script = (name: string) => fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
  const chain = o.chain ?? 'default';
  const children: Child[] = [];
  const start = async (name: string, args: string[], timeoutMs = 30_000) => {
    const c = await startChild(script(name), args, timeoutMs);
    children.push(c);
    return c;
  };
  try {
    const stub = String((await start('overhead-roles', ['stub'])).port);
    const inProcess = await start('overhead-roles', ['tollgate', stub, chain], 180_000);
    const pdp = await start('extproc-roles', ['pdp', stub, chain], 180_000);
    const address = `127.0.0.1:${pdp.port}`;
    const targets = [
      { scenario: `in process (${chain} chain)`, port: inProcess.port, keys: keysOf(inProcess) },
      { scenario: 'ext_proc PDP, request events', port: (await start('extproc-roles', ['frontend', stub, address, 'request'], 60_000)).port, keys: keysOf(pdp) },
      { scenario: 'ext_proc PDP, request + response events', port: (await start('extproc-roles', ['frontend', stub, address, 'all'], 60_000)).port, keys: keysOf(pdp) },
    ];
    for (const t of targets) {
      log(`warming up ${t.scenario} ...`);
      await run(`http://127.0.0.1:${t.port}`, { duration: 2, connections: o.connections, keys: t.keys });
    }
    const rounds = await inTurns(targets, o.rounds, (t, round) => {
      log(`round ${round + 1}/${o.rounds}: ${t.scenario}, ${o.duration}s at ${o.connections} connections, then ${o.duration}s at ${o.rate} req/s`);
      return measureRound(`http://127.0.0.1:${t.port}`, o, t.keys);
    });
    const rps = (i: number) => rounds[i].map((r) => r.sat.rps);
    const rows: Row[] = targets.map((t, i) => ({
      scenario: t.scenario,
      ...roundColumns(rounds[i]),
      vs_in_process: medianRatio(rps(i), rps(0)),
      ...addedLatency(rounds[i], rounds[0]),
    }));
    process.stdout.write(table(rows, ['scenario', 'rps', 'rps_rounds', 'vs_in_process', 'sat_p99_ms', 'at_rate_p50_ms', 'at_rate_p99_ms', 'added_p50_ms', 'added_p99_ms', 'errors']) + '\n' + failureReport(rows));
    if (o.json) writeJson(o.json, { bench: 'extproc-overhead', at: new Date().toISOString(), chain, duration: o.duration, rounds: o.rounds, connections: o.connections, rate: o.rate, node: process.version, results: rows });
    return rows;
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}
