// Helpers for the scheduler's tests: endpoints with given metrics, contexts, plugin deps, Prometheus pages, a fake metrics server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { PoolConfig } from '../config/runtime-config.js';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { EndpointState } from './endpoint-state.js';
import type { EngineSnapshot } from './engine-metrics.js';
import type { CycleContext, PluginDeps, Scorer, SchedulerSettings } from './plugin-types.js';
import type { PickRequest } from './types.js';

export const SETTINGS: SchedulerSettings = DEFAULT_SETTINGS.scheduler;

export function snapshot(m: Partial<EngineSnapshot> = {}): EngineSnapshot {
  return { waiting: 0, running: 0, kvCacheUsage: 0, blockSize: null, numGpuBlocks: null, modelName: null, lora: null, promptTokensTotal: null, ...m };
}

/** An endpoint `10.0.0.<i>:8000` scraped at `now` with the given metrics. */
export function endpoint(i: number, m: Partial<EngineSnapshot> = {}, now = 1000): EndpointState {
  const ep = new EndpointState({ url: `http://10.0.0.${i}:8000`, address: `10.0.0.${i}:8000` }, 'vllm');
  ep.recordScrape(snapshot(m), now);
  return ep;
}

export function lora(running: string[], waiting: string[], maxLoras: number): EngineSnapshot['lora'] {
  return { running: new Set(running), waiting: new Set(waiting), inUse: new Set([...running, ...waiting]).size, maxLoras };
}

export function pool(name: string, endpoints: string[], extra: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name,
    engine: 'vllm',
    endpoints: endpoints.map((url) => ({ url, address: new URL(url).host })),
    ...extra,
  };
}

export function request(p: PoolConfig, r: Partial<PickRequest> = {}): PickRequest {
  return { pool: p, targetModel: 'base', prompt: 'hello', priority: 0, fairnessId: 'tenant', ...r };
}

export function ctx(r: Partial<PickRequest> = {}, extra: Partial<CycleContext> = {}): CycleContext {
  return { request: request(pool('p', []), r), now: 1000, adapter: false, ...extra };
}

export function deps(overrides: Partial<PluginDeps> = {}): PluginDeps {
  return { settings: SETTINGS, random: () => 0, observePrefixHitRatio: () => {}, ...overrides };
}

/** The scores a scorer gives, or null when it abstains. */
export function scores(scorer: Scorer, candidates: EndpointState[], c: CycleContext = ctx()): number[] | null {
  const out = new Float64Array(candidates.length);
  return scorer.score(c, candidates, out) ? [...out] : null;
}

/** A vLLM /metrics page. */
export function vllmPage(m: { waiting?: number; running?: number; kv?: number; model?: string; extra?: string } = {}): string {
  const label = m.model ? `{model_name="${m.model}"}` : '';
  return [
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting${label} ${m.waiting ?? 0}`,
    `vllm:num_requests_running${label} ${m.running ?? 0}`,
    `vllm:kv_cache_usage_perc${label} ${m.kv ?? 0}`,
    m.extra ?? '',
  ].join('\n');
}

/** A pino logger whose lines land in `lines`. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

export interface FakeMetricsServer {
  url: string;
  address: string;
  /** The page served from now on; a number answers with that status instead. */
  serve(page: string | number): void;
  /** Requests /metrics received. */
  hits: number;
  /** Most scrapes in progress at once. */
  maxConcurrent: number;
  /** Delay before answering, in ms. */
  delayMs: number;
  /** The JSON its /v1/models answers with (a 404 without it). */
  models: string | undefined;
  /** Requests /v1/models received. */
  modelsHits: number;
  /** Delay before /v1/models answers, in ms. */
  modelsDelayMs: number;
  close(): Promise<void>;
}

/** A model server's /metrics on a random loopback port. */
export async function fakeMetricsServer(page: string | number = vllmPage()): Promise<FakeMetricsServer> {
  let current = page;
  let concurrent = 0;
  const state = {
    hits: 0,
    maxConcurrent: 0,
    delayMs: 0,
    models: undefined as string | undefined,
    modelsHits: 0,
    modelsDelayMs: 0,
  };
  const server: Server = createServer((req, res) => {
    if (req.url === '/v1/models') {
      state.modelsHits++;
      setTimeout(() => {
        if (state.models === undefined) res.writeHead(404).end('no');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(state.models);
      }, state.modelsDelayMs);
      return;
    }
    state.hits++;
    concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
    setTimeout(() => {
      concurrent--;
      if (typeof current === 'number') res.writeHead(current).end('no');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(current);
    }, state.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    serve: (p: string | number) => void (current = p),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** Resolves after `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
