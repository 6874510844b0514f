// The endpoint picker: keeps every pool's endpoint state fresh by scraping, and answers pick() through
// each pool's compiled profile, with saturation, shedding and flow control in front of it.
import { Registry } from 'prom-client';
import type { PoolConfig } from '../config/runtime-config.js';
import { gatewayError } from '../gateway/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { DEFAULT_UPSTREAM_TLS, type UpstreamTls } from '../lib/upstream-tls.js';
import { compilePickerConfig } from './compile-picker-config.js';
import { DEFAULT_PICKER_CONFIG } from './default-picker-config.js';
import type { PoolView } from './fleet-view.js';
import { HttpMetricsSource, MAX_PAGE_BYTES, type MetricsSource } from './metrics-source.js';
import { SchedulerMetrics } from './metrics.js';
import { PluginRegistry, registerBuiltins } from './plugin-registry.js';
import type { PluginDeps, SchedulerSettings } from './plugin-types.js';
import { PoolState, type CompiledProfile, type PoolDeps } from './pool-state.js';
import { firstScrapesWithin, scrapeSettings } from './scrape-budget.js';
import { Scraper } from './scraper.js';
import type { EndpointPicker, Pick, PickRequest } from './types.js';

export interface SchedulerOptions {
  settings: SchedulerSettings;
  logger?: Logger;
  /** Where the picker's metrics are registered; a private registry when omitted. */
  registry?: Registry;
  /** Epoch milliseconds; monotonic by default. */
  now?: () => number;
  /** In [0, 1). */
  random?: () => number;
  /** Where /metrics pages come from; HTTP (undici) by default. */
  metricsSource?: MetricsSource;
  /** How https endpoints' certificates are checked when scraping them: as the proxy checks them (UpstreamPools.tls). */
  tls?: UpstreamTls;
  /** Plugin types configs may use; the built-ins by default. */
  plugins?: PluginRegistry;
}

/**
 * @example
 * const scheduler = new Scheduler({ settings: config.settings.scheduler, logger, registry });
 * scheduler.update(config.pools);
 * scheduler.start();
 * const pick = await scheduler.pick({ pool, targetModel, prompt, priority: 0, fairnessId: 'app-1' });
 * // ...send to pick.endpoints[0], falling back to the next ones; then:
 * pick.release(pick.endpoints[0], { reached: true, status: 200 });
 */
export class Scheduler implements EndpointPicker {
  #tls: UpstreamTls;
  readonly #now: () => number;
  readonly #metrics: SchedulerMetrics;
  readonly #plugins: PluginRegistry;
  /** Shared by every plugin and pool, which read `settings` from it when they use it: configure() replaces it. */
  readonly #pluginDeps: PluginDeps;
  readonly #poolDeps: PoolDeps;
  readonly #source: MetricsSource;
  /** The source this scheduler made (null when one was given): configure() passes it the new scrape limits. */
  readonly #httpSource: HttpMetricsSource | null;
  readonly #scraper: Scraper;
  readonly #pools = new Map<string, PoolState>();
  /** As configured; the pools and plugins read them as scrapeSettings() stretches them for #endpoints. */
  #configured: SchedulerSettings;
  /** Endpoints scraped, over every pool. */
  #endpoints = 0;

  constructor(opts: SchedulerOptions) {
    this.#tls = opts.tls ?? DEFAULT_UPSTREAM_TLS;
    this.#now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.#configured = opts.settings;
    const random = opts.random ?? Math.random;
    this.#metrics = new SchedulerMetrics(opts.registry ?? new Registry(), () => this.#pools.values(), () => this.#poolDeps.settings.scrapeInterval);
    this.#plugins = opts.plugins ?? registerBuiltins(new PluginRegistry());
    this.#pluginDeps = {
      settings: opts.settings,
      random,
      observePrefixHitRatio: (ratio) => this.#metrics.observePrefixHitRatio(ratio),
    };
    this.#poolDeps = { settings: opts.settings, logger: opts.logger ?? silentLogger, metrics: this.#metrics, now: this.#now };
    this.#httpSource = opts.metricsSource ? null : new HttpMetricsSource(scrapeTimeout(opts.settings), { tls: this.#tls });
    this.#source = opts.metricsSource ?? this.#httpSource!;
    const logger = this.#poolDeps.logger;
    this.#scraper = new Scraper({
      source: this.#source,
      intervalMs: opts.settings.scrapeInterval,
      now: this.#now,
      random,
      onNoContextWindow: (ep, reason) => logger.info({ endpoint: ep.address, reason }, 'context length unknown (GET /v1/models): token caps tollgate sets are not fitted to it'),
      onPageCut: (ep) =>
        logger.warn(
          { endpoint: ep.address, bytes: MAX_PAGE_BYTES },
          `/metrics page over ${MAX_PAGE_BYTES >> 20} MiB: only that much is read, and its LoRA adapters are not known (a long-running vLLM lists every vllm:lora_requests_info label set it ever had; a restart clears them)`,
        ),
    });
  }

  /**
   * Applies reloaded settings to everything at once: the scrape interval and timeout (from each endpoint's next
   * scrape), staleness, saturation thresholds and queue limits (from the next decision). Requests already queued keep
   * their place and the deadline they were given; looser thresholds let them go at once.
   */
  configure(settings: SchedulerSettings, opts: { tls?: UpstreamTls } = {}): void {
    const tls = opts.tls ?? this.#tls;
    if (settings === this.#configured && tls === this.#tls) return;
    this.#tls = tls;
    this.#configured = settings;
    this.#applySettings();
    for (const pool of this.#pools.values()) pool.settingsChanged();
  }

  /**
   * Puts in force the configured settings as the scrape budget stretches them for the endpoints there are now: the
   * settings the pools and plugins read, the scrape timeout, and the scraper's pace.
   */
  #applySettings(): void {
    const before = this.#poolDeps.settings.scrapeInterval;
    const settings = scrapeSettings(this.#configured, this.#endpoints);
    this.#pluginDeps.settings = settings;
    this.#poolDeps.settings = settings;
    this.#httpSource?.configure({ timeoutMs: scrapeTimeout(settings), tls: this.#tls });
    this.#scraper.setPace(settings.scrapeInterval, firstScrapesWithin(settings, this.#endpoints));
    const { scrapeInterval, maxScrapesPerSecond } = this.#configured;
    if (settings.scrapeInterval !== scrapeInterval && settings.scrapeInterval !== before) {
      this.#poolDeps.logger.info(
        { endpoints: this.#endpoints, scrapeIntervalMs: settings.scrapeInterval, staleAfterMs: settings.staleAfter, configuredMs: scrapeInterval, maxScrapesPerSecond },
        'scrape interval stretched: endpoints × scrapeInterval is over scheduler.maxScrapesPerSecond',
      );
    }
  }

  /**
   * Applies the pools of a (re)loaded config: endpoints that stay keep their state, removed ones stop
   * being scraped, requests queued for a removed pool are refused. A pool goes on with its queue, endpoint state and
   * in-flight counts under the name of the new pool that serves its endpoints: its own name while that still serves
   * any of them, else another (a rename, or two names swapped). A pool that no name goes on with, because its name
   * now carries another pool's servers and queue, refuses its queued requests as a removed one does. Throws
   * PickerConfigError, changing nothing, when a pool's EndpointPickerConfig does not compile.
   */
  update(pools: Map<string, PoolConfig>): void {
    const carried = this.#carried(pools);
    // Compile everything first, so a bad config changes nothing.
    const profiles = new Map<string, CompiledProfile | null>();
    for (const [name, config] of pools) profiles.set(name, this.#compile(config, carried.get(name)));
    // Before the new endpoints are watched: their first scrapes spread at the new pace. (A pool keeps one per URL.)
    this.#endpoints = 0;
    for (const config of pools.values()) this.#endpoints += new Set(config.endpoints.map((e) => e.url)).size;
    this.#applySettings();

    const going = new Set(carried.values());
    for (const [name, pool] of this.#pools) {
      if (going.has(pool)) continue;
      for (const ep of pool.endpoints) this.#scraper.unwatch(ep);
      const why = pools.has(name) ? 'now serves the endpoints (and queue) of another pool' : 'was removed from the configuration';
      pool.close(gatewayError('TG_ERR_NO_ENDPOINTS', `pool "${name}" ${why}`));
    }
    this.#pools.clear();
    for (const [name, config] of pools) {
      const profile = profiles.get(name) ?? null;
      let pool = carried.get(name);
      let added;
      if (pool) {
        pool.rename(name);
        const change = pool.update(config, profile);
        for (const ep of change.removed) this.#scraper.unwatch(ep);
        added = change.added;
      } else {
        pool = new PoolState(config, profile!, this.#poolDeps);
        added = pool.endpoints;
      }
      this.#pools.set(name, pool);
      const scraped = pool.scraped.bind(pool);
      for (const ep of added) this.#scraper.watch(ep, scraped);
    }
    const urls = new Set<string>();
    for (const pool of this.#pools.values()) for (const ep of pool.endpoints) urls.add(ep.url);
    this.#source.retain(urls);
    // After the removed pools refused what they had queued (each refusal observed under its pool's name).
    this.#metrics.retainPools(new Set(this.#pools.keys()));
  }

  /** Starts scraping (the first scrapes go out within what scheduler.maxScrapesPerSecond allows for them). */
  start(): void {
    this.#scraper.start();
  }

  /** Stops scraping, closes connections and refuses whatever is still queued (503, the client's connection closing after it). */
  async stop(): Promise<void> {
    this.#scraper.stop();
    for (const pool of this.#pools.values()) pool.close(gatewayError('TG_ERR_SHUTTING_DOWN', undefined, { connection: 'close' }));
    await this.#source.close();
  }

  /** Scrapes every endpoint once now; resolves when all have answered or failed. */
  refresh(): Promise<void> {
    return this.#scraper.refresh();
  }

  pick(req: PickRequest): Pick | Promise<Pick> {
    const pool = this.#pools.get(req.pool.name);
    if (!pool) return Promise.reject(gatewayError('TG_ERR_NO_ENDPOINTS', `pool "${req.pool.name}" is not known to the endpoint picker`));
    return pool.pick(req);
  }

  contextWindow(pool: string): number | undefined {
    return this.#pools.get(pool)?.contextWindow();
  }

  /** The fleet for the admin API: every pool, or one (undefined when unknown). */
  view(): PoolView[];
  view(pool: string): PoolView | undefined;
  view(pool?: string): PoolView[] | PoolView | undefined {
    if (pool !== undefined) return this.#pools.get(pool)?.view();
    return [...this.#pools.values()].map((p) => p.view());
  }

  /** For /readyz: a pool is reachable when an endpoint has fresh metrics or answered a request recently. */
  ready(): { pool: string; reachable: boolean }[] {
    return [...this.#pools.values()].map((p) => ({ pool: p.name, reachable: p.reachable() }));
  }

  /**
   * New pool name → the pool that goes on under it. A name keeps its pool while it serves any of that pool's
   * endpoints; each other new name takes the unclaimed pool whose endpoints it serves most of (two names swapped:
   * each queue follows its servers, not the name, or it would be drained to servers that never ran its model). A
   * name that shares nothing with any pool keeps its own when no other name took it (every endpoint replaced).
   */
  #carried(pools: Map<string, PoolConfig>): Map<string, PoolState> {
    const urlsOf = new Map([...pools].map(([name, config]) => [name, new Set(config.endpoints.map((e) => e.url))]));
    const shared = (pool: PoolState, name: string) => pool.endpoints.filter((ep) => urlsOf.get(name)!.has(ep.url)).length;
    const out = new Map<string, PoolState>();
    for (const [name, pool] of this.#pools) if (pools.has(name) && shared(pool, name) > 0) out.set(name, pool);
    const unclaimed = [...this.#pools.values()].filter((p) => out.get(p.name) !== p);
    for (const name of pools.keys()) {
      if (out.has(name) || unclaimed.length === 0) continue;
      let best: PoolState | undefined;
      let bestShared = 0;
      for (const pool of unclaimed) {
        const n = shared(pool, name);
        if (n > bestShared) [best, bestShared] = [pool, n];
      }
      if (!best) continue;
      out.set(name, best);
      unclaimed.splice(unclaimed.indexOf(best), 1);
    }
    // A pool whose every endpoint was replaced, and whose servers no other name took, waits for the new ones.
    for (const pool of unclaimed) if (pools.has(pool.name) && !out.has(pool.name)) out.set(pool.name, pool);
    return out;
  }

  /** null when the pool already runs this exact config (its plugins keep their state). */
  #compile(config: PoolConfig, current: PoolState | undefined): CompiledProfile | null {
    const spec = config.picker ?? DEFAULT_PICKER_CONFIG;
    const key = JSON.stringify(spec);
    if (current && current.profileKey === key) return null;
    const pipeline = compilePickerConfig(spec, {
      registry: this.#plugins,
      deps: this.#pluginDeps,
      timerFor: (plugin) => this.#metrics.pluginTimer(plugin.type, plugin.name),
    });
    return { pipeline, key };
  }
}

/** A scrape slower than a few intervals is as good as failed; never wait longer than the staleness limit. */
function scrapeTimeout(s: SchedulerSettings): number {
  return Math.min(Math.max(250, s.scrapeInterval * 5), s.staleAfter);
}
