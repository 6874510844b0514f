// `tollgate bench overhead`: the same load against an upstream stub directly, through a bare node:http+undici
// proxy (the Node floor), through tollgate, and through nginx where installed — all in one run, measured in turns
// over several rounds so ratios hold on a noisy machine (bench/in-turns.ts). Reports throughput at saturation and
// added p50/p99 latency at a fixed 1,000 req/s.
import autocannon from 'autocannon';
import { request } from 'undici';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countFailure, describeFailures, fixedRateLatency, type Failures, type LatencySummary } from './fixed-rate.js';
import { inTurns, median, medianDifference, medianRatio, spread } from './in-turns.js';
import { keysOf, startChild, type Child } from './processes.js';
import { RedisCalls } from './redis-calls.js';
import { barChartSvg, table, writeJson, writeSvg, type Row } from './report.js';

/** Above this max/min of the stub's per-round throughput, the run says the host was unsteady. */
const HOST_SPREAD_WARNING = 1.25;

export interface OverheadOptions {
  /** Seconds of each round's saturation and of its fixed-rate measurement. */
  duration: number;
  /** Rounds per scenario, taken in turns (bench/in-turns.ts). */
  rounds: number;
  connections: number;
  rate: number;
  json?: string;
  svg?: string;
  /** Also the full chain with its counters in this Redis (`--redis`). */
  redis?: string;
  log?: (line: string) => void;
}

/** A small chat request: what is measured is the proxy, not the model. */
export const BODY = JSON.stringify({ model: 'bench-model', messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Say hello in one short sentence, please.' }], max_tokens: 32 });

export interface Measure {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** What the errors were: `status 503`, `timeout`, `socket error` → count. */
  failures: Failures;
}

/** Saturating load with autocannon; with `keys`, each connection is another app. */
export function run(url: string, opts: { duration: number; connections: number; keys?: string[] }): Promise<Measure> {
  const keys = opts.keys ?? [];
  let next = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
        duration: opts.duration,
        connections: opts.connections,
        // Each connection is another app: the chains look up and count a different key per client.
        setupClient: keys.length > 0 ? (client) => client.setHeaders({ 'content-type': 'application/json', 'x-api-key': keys[next++ % keys.length] }) : undefined,
      },
      (err, r) => {
        if (err) return reject(err);
        const failures: Failures = {};
        for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) if (!code.startsWith('2')) countFailure(failures, `status ${code}`, stat.count);
        countFailure(failures, 'timeout', r.timeouts);
        countFailure(failures, 'socket error', r.errors - r.timeouts);
        resolve({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx, failures });
      },
    );
  });
}

/** One round of one contender: throughput at saturation, then latency at the fixed rate. */
export interface Round {
  sat: Measure;
  fixed: LatencySummary;
}

/**
 * Saturation for `duration` seconds, then `rate` req/s for as long (each connection another app when `keys`);
 * `saturated` runs between the two (to read CPU counters over the saturation alone).
 */
export async function measureRound(url: string, o: { duration: number; connections: number; rate: number }, keys?: string[], saturated?: () => void): Promise<Round> {
  const sat = await run(url, { duration: o.duration, connections: o.connections, keys });
  saturated?.();
  const fixed = await fixedRateLatency(url, '/v1/chat/completions', BODY, o.rate, o.duration, keys?.length ? { 'x-api-key': keys[0] } : {});
  return { sat, fixed };
}

/** A contender's table columns from its rounds: medians over rounds, each round's throughput, and every failure. */
export function roundColumns(rounds: readonly Round[]): Row {
  return {
    rps: median(rounds.map((r) => r.sat.rps)),
    rps_rounds: rounds.map((r) => Math.round(r.sat.rps)),
    sat_p50_ms: median(rounds.map((r) => r.sat.p50)),
    sat_p99_ms: median(rounds.map((r) => r.sat.p99)),
    at_rate_p50_ms: median(rounds.map((r) => r.fixed.p50)),
    at_rate_p99_ms: median(rounds.map((r) => r.fixed.p99)),
    errors: rounds.reduce((n, r) => n + r.sat.errors + r.fixed.errors, 0),
    failures: describeFailures(rounds.flatMap((r) => [r.sat.failures, r.fixed.failures])),
  };
}

/** A line per scenario that had failed requests, saying what they were; empty when none failed. */
export function failureReport(rows: readonly Row[]): string {
  return rows
    .filter((r) => r.failures)
    .map((r) => `${String(r.scenario)} failed requests: ${String(r.failures)}\n`)
    .join('');
}

/** What `a` adds to `b`'s latency at the fixed rate, per round, then the median: `p50` and `p99` in ms. */
export function addedLatency(a: readonly Round[], b: readonly Round[]): { added_p50_ms: number; added_p99_ms: number } {
  const p = (rounds: readonly Round[], key: 'p50' | 'p99') => rounds.map((r) => r.fixed[key]);
  return { added_p50_ms: medianDifference(p(a, 'p50'), p(b, 'p50')), added_p99_ms: medianDifference(p(a, 'p99'), p(b, 'p99')) };
}

/**
 * CPU milliseconds a process and its children have used (for nginx: the idle Node process that stops it, its master
 * and its worker), from /proc: CPU time per request is steadier than throughput on a shared machine, because it does
 * not count the time a process waits for a core.
 */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const ticks = statTicks(`/proc/${pid}/stat`);
    let children = 0;
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) children += cpuMs(Number(child)) ?? 0;
    return ticks * 10 + children;
  } catch {
    return null;
  }
}

/** user + system clock ticks (10 ms) from a /proc stat file. */
function statTicks(file: string): number {
  const fields = readFileSync(file, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * CPU milliseconds of a process's main thread only: for a Node process, the event loop, which bounds its throughput
 * on a machine with cores to spare (worker threads, like the analytics writer's, run beside it).
 */
function loopCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return statTicks(`/proc/${pid}/task/${pid}/stat`) * 10;
  } catch {
    return null;
  }
}

/** `a - b` of two CPU figures, or null when either is missing. */
function difference(a: unknown, b: unknown): number | null {
  return typeof a === 'number' && typeof b === 'number' ? a - b : null;
}

function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function benchOverhead(o: OverheadOptions): Promise<Row[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const roles = fileURLToPath(new URL(`./overhead-roles${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  const children: Child[] = [];
  let redisCalls: RedisCalls | undefined;
  try {
    const stub = await startChild(roles, ['stub']);
    children.push(stub);
    // `node`: one Node process whose main thread is its event loop (nginx's work is in its worker processes).
    const targets: { name: string; port: number; pid?: number; node?: boolean; keys?: string[] }[] = [{ name: 'direct (stub)', port: stub.port, pid: stub.proc.pid, node: true }];
    const bare = await startChild(roles, ['bare-proxy', String(stub.port)]);
    children.push(bare);
    targets.push({ name: 'bare node:http+undici proxy', port: bare.port, pid: bare.proc.pid, node: true });
    const scenarios = [
      ['none', 'tollgate (no policies)'],
      ['default', 'tollgate default chain'],
      ['full', 'tollgate full chain'],
      ['full-quiet', 'tollgate full chain, observability off'],
      ['full-traced', 'tollgate full chain + tracing'],
      ['full-sampled', 'tollgate full chain + tracing 10 %'],
      ['catalogue', 'tollgate full catalogue'],
      ...(o.redis === undefined ? [] : ([['full-redis', 'tollgate full chain, counters in Redis']] as const)),
    ] as const;
    // Two at a time (seeding 10,000 keys is most of a start, and there are two cores); targets keep the list's order.
    for (let i = 0; i < scenarios.length; i += 2) {
      const pair = scenarios.slice(i, i + 2);
      const started = await Promise.allSettled(pair.map(([chain]) => startChild(roles, ['tollgate', String(stub.port), chain, ...(chain === 'full-redis' ? [o.redis!] : [])], 180_000)));
      for (const [k, s] of started.entries()) {
        if (s.status === 'rejected') continue;
        children.push(s.value);
        targets.push({ name: pair[k][1], port: s.value.port, pid: s.value.proc.pid, node: true, keys: keysOf(s.value) });
      }
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
    }
    if (hasNginx()) {
      const ngx = await startChild(roles, ['nginx', String(stub.port)]);
      children.push(ngx);
      targets.push({ name: 'nginx proxy_pass', port: ngx.port, pid: ngx.proc.pid });
    } else log('nginx is not installed: its row is skipped');

    for (const t of targets) {
      const url = `http://127.0.0.1:${t.port}`;
      // A scenario that answers errors would measure how fast tollgate refuses, not how fast it proxies.
      const probe = await request(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...(t.keys?.length ? { 'x-api-key': t.keys[0] } : {}) }, body: BODY });
      const answer = await probe.body.text();
      if (probe.statusCode !== 200) throw new Error(`${t.name} answered ${probe.statusCode} to the benchmark request: ${answer.slice(0, 300)}`);
      log(`warming up ${t.name} ...`);
      await run(url, { duration: 2, connections: o.connections, keys: t.keys });
    }
    redisCalls = o.redis === undefined ? undefined : new RedisCalls(o.redis);
    const redisTarget = targets.find((t) => t.name === 'tollgate full chain, counters in Redis');
    /** Script calls Redis served during each saturation run of the Redis scenario. */
    const scriptCalls: number[] = [];
    const rounds = await inTurns(targets, o.rounds, async (t, round) => {
      log(`round ${round + 1}/${o.rounds}: ${t.name}, ${o.duration}s at ${o.connections} connections, then ${o.duration}s at ${o.rate} req/s`);
      const counting = t === redisTarget ? redisCalls : undefined;
      const calls0 = await counting?.total();
      let calls1: Promise<number | undefined> | undefined;
      const cpu0 = cpuMs(t.pid);
      const loop0 = t.node ? loopCpuMs(t.pid) : null;
      let cpu: number | null = null;
      let loop: number | null = null;
      const measured = await measureRound(`http://127.0.0.1:${t.port}`, o, t.keys, () => {
        const cpu1 = cpuMs(t.pid);
        const loop1 = t.node ? loopCpuMs(t.pid) : null;
        calls1 = counting?.total();
        cpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
        loop = loop0 === null || loop1 === null ? null : loop1 - loop0;
      });
      const callsAfter = await calls1;
      if (calls0 !== undefined && callsAfter !== undefined) scriptCalls.push(callsAfter - calls0);
      return { ...measured, cpuMs: cpu as number | null, loopMs: loop as number | null };
    });
    const results: Row[] = targets.map((t, i) => {
      const samples = rounds[i];
      const requests = samples.reduce((n, r) => n + r.sat.rps * o.duration, 0);
      const perRequest = (ms: (number | null)[]) => (ms.includes(null) ? null : ((ms as number[]).reduce((a, b) => a + b, 0) * 1000) / requests);
      return { scenario: t.name, ...roundColumns(samples), cpu_us_per_req: perRequest(samples.map((r) => r.cpuMs)), loop_us_per_req: perRequest(samples.map((r) => r.loopMs)) };
    });
    const roundsOf = (r: Row) => rounds[results.indexOf(r)];
    const roundRps = (r: Row) => roundsOf(r).map((m) => m.sat.rps);
    const direct = results[0];
    const bareRow = results.find((r) => r.scenario === 'bare node:http+undici proxy')!;
    const nginxRow = results.find((r) => r.scenario === 'nginx proxy_pass');
    const plain = results.find((r) => r.scenario === 'tollgate (no policies)')!;
    for (const r of results) {
      r.vs_no_policies = r === direct || r === bareRow || r === nginxRow ? null : medianRatio(roundRps(r), roundRps(plain));
      r.vs_bare_node = medianRatio(roundRps(r), roundRps(bareRow));
      r.vs_nginx = nginxRow ? medianRatio(roundRps(r), roundRps(nginxRow)) : null;
      Object.assign(r, addedLatency(roundsOf(r), roundsOf(direct)));
    }
    const columns = ['scenario', 'rps', 'rps_rounds', 'vs_bare_node', 'vs_nginx', 'vs_no_policies', 'cpu_us_per_req', 'loop_us_per_req', 'sat_p99_ms', 'at_rate_p50_ms', 'at_rate_p99_ms', 'added_p50_ms', 'added_p99_ms', 'errors'];
    process.stdout.write(table(results, columns) + '\n' + failureReport(results));
    // The stub does the same work in every round: how far its throughput moved is how far the host's speed did.
    const hostSpread = spread(roundRps(direct));
    if (hostSpread > HOST_SPREAD_WARNING) {
      process.stdout.write(`the host's speed moved ${hostSpread.toFixed(1)}x between rounds (the stub's throughput): compare the CPU columns, and ratios only as medians\n`);
    }
    // Observability's price: each observed variant of the full chain against the same chain with usage records,
    // request metrics and tracing off.
    const quiet = results.find((r) => r.scenario === 'tollgate full chain, observability off');
    const observability = quiet
      ? results
          .filter((r) => ['tollgate full chain', 'tollgate full chain + tracing', 'tollgate full chain + tracing 10 %'].includes(String(r.scenario)))
          .map((r) => ({
            scenario: r.scenario,
            throughput_cost: 1 - medianRatio(roundRps(r), roundRps(quiet)),
            added_cpu_us_per_req: r.cpu_us_per_req === null || quiet.cpu_us_per_req === null ? null : (r.cpu_us_per_req as number) - (quiet.cpu_us_per_req as number),
            added_loop_us_per_req: r.loop_us_per_req === null || quiet.loop_us_per_req === null ? null : (r.loop_us_per_req as number) - (quiet.loop_us_per_req as number),
          }))
      : [];
    for (const o of observability) {
      const loop = o.added_loop_us_per_req === null ? '' : ` (${o.added_loop_us_per_req.toFixed(0)} µs on the event loop)`;
      const cpu = o.added_cpu_us_per_req === null ? '' : `, ${o.added_cpu_us_per_req.toFixed(0)} µs more CPU per request${loop}`;
      process.stdout.write(`observability cost of ${o.scenario} vs analytics, metrics and tracing off: ${(o.throughput_cost * 100).toFixed(1)} % of throughput${cpu}\n`);
    }
    // Redis's price: the same chain, its counters in Redis rather than in the process.
    const inMemory = results.find((r) => r.scenario === 'tollgate full chain');
    const inRedis = results.find((r) => r.scenario === 'tollgate full chain, counters in Redis');
    const redisRequests = inRedis ? roundsOf(inRedis).reduce((n, r) => n + r.sat.rps * o.duration, 0) : 0;
    const redis =
      inMemory && inRedis
        ? {
            throughput_cost: 1 - medianRatio(roundRps(inRedis), roundRps(inMemory)),
            added_cpu_us_per_req: difference(inRedis.cpu_us_per_req, inMemory.cpu_us_per_req),
            added_loop_us_per_req: difference(inRedis.loop_us_per_req, inMemory.loop_us_per_req),
            script_calls_per_req: scriptCalls.length === o.rounds && redisRequests > 0 ? scriptCalls.reduce((a, b) => a + b, 0) / redisRequests : null,
          }
        : undefined;
    if (redis) {
      const cpu = redis.added_cpu_us_per_req === null ? '' : `, ${redis.added_cpu_us_per_req.toFixed(0)} µs more CPU per request (${redis.added_loop_us_per_req?.toFixed(0) ?? '?'} µs on the event loop)`;
      const calls = redis.script_calls_per_req === null ? '' : `; Redis served ${redis.script_calls_per_req.toFixed(2)} script calls per request (INFO commandstats, every client's)`;
      process.stdout.write(`counters in Redis vs in the process (full chain): ${(redis.throughput_cost * 100).toFixed(1)} % of throughput${cpu}${calls}\n`);
    }
    const meta = { bench: 'overhead', at: new Date().toISOString(), duration: o.duration, rounds: o.rounds, host_spread: hostSpread, connections: o.connections, rate: o.rate, node: process.version };
    if (o.json) writeJson(o.json, { ...meta, results, observability, ...(redis && { redis }) });
    if (o.svg) {
      writeSvg(o.svg, barChartSvg('tollgate bench overhead: throughput (same run)', 'req/s', [{ label: 'requests per second at saturation', bars: results.map((r) => ({ name: String(r.scenario), value: r.rps as number })) }]));
    }
    return results;
  } finally {
    await Promise.all([...children.map((c) => c.stop()), redisCalls?.close()]);
  }
}
