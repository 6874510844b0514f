// Scrapes every watched endpoint each scrapeInterval, one scrape at a time per endpoint, on unref'd timers.
import type { EndpointState } from './endpoint-state.js';
import { readEngineMetrics } from './engine-metrics.js';
import { MAX_PAGE_BYTES, type MetricsSource } from './metrics-source.js';
import { readModelList } from './model-card.js';

/**
 * How often an endpoint's /v1/models is read again, for its context length and which names are base models and which
 * adapters: they change seldom (a restart, an adapter loaded at run time).
 */
export const MODELS_REFRESH_MS = 60_000;

/**
 * Once an endpoint's page came cut, it counts as cut (LoRA state unknown, no new warning) until one comes under this
 * many characters (a restart; vLLM's page only grows by lora_requests_info lines). Its gauges change its size by a
 * few bytes a scrape: a page at the limit crossed it back and forth, a warning each time and adapters known by turns.
 */
const UNCUT_BELOW = (MAX_PAGE_BYTES * 3) / 4;

export interface ScraperOptions {
  source: MetricsSource;
  /** The first interval; setPace() changes it (a reload, endpoints added or removed). */
  intervalMs: number;
  now: () => number;
  random: () => number;
  /** An endpoint's /v1/models could not be read, or says no context length, the first time that happens for it. */
  onNoContextWindow?: (endpoint: EndpointState, reason: string) => void;
  /** An endpoint's /metrics page came cut (MetricsPage.cut), the first time since its pages came under UNCUT_BELOW. */
  onPageCut?: (endpoint: EndpointState) => void;
}

class Target {
  timer: NodeJS.Timeout | undefined;
  /** When `timer` is due (the scraper's clock); 0 when no timer is pending. */
  dueAt = 0;
  /** The scrape under way, so a refresh joins it instead of overlapping it. */
  running: Promise<void> | undefined;
  /** When the last scheduled scrape started (the scraper's clock); undefined before the first. */
  startedAt: number | undefined;
  /** Its pages count as cut: one came cut, and none has come under UNCUT_BELOW since. */
  cut = false;
  /** Model-list reads failed in a row: while none has worked, the next comes sooner than MODELS_REFRESH_MS. */
  modelsFailures = 0;
  watched = true;
  constructor(
    readonly endpoint: EndpointState,
    readonly done: (endpoint: EndpointState) => void,
  ) {}
}

export class Scraper {
  readonly #opts: ScraperOptions;
  readonly #targets = new Map<EndpointState, Target>();
  #intervalMs: number;
  /** New endpoints' first scrapes go out at random within this many ms (setPace). */
  #firstWithinMs = 0;
  #started = false;

  constructor(opts: ScraperOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs;
  }

  /**
   * A new interval (a reload): each endpoint's next scrape moves to one new interval after its last one started (at
   * once when that has passed). A scrape under way is not disturbed: a moved one that comes due meanwhile joins it.
   * First scrapes (start(), watch() once started) go out at random within `firstWithinMs`, not all in one burst.
   */
  setPace(ms: number, firstWithinMs: number): void {
    this.#firstWithinMs = firstWithinMs;
    if (ms === this.#intervalMs) return;
    this.#intervalMs = ms;
    if (!this.#started) return;
    const now = this.#opts.now();
    for (const target of this.#targets.values()) {
      if (target.startedAt === undefined) continue;
      this.#schedule(target, Math.max(0, target.startedAt + ms - now));
    }
  }

  /** Scrapes `endpoint` from now on, calling `done` after every attempt, successful or not (its model list's too). */
  watch(endpoint: EndpointState, done: (endpoint: EndpointState) => void): void {
    if (this.#targets.has(endpoint)) return;
    const target = new Target(endpoint, done);
    this.#targets.set(endpoint, target);
    if (this.#started) this.#schedule(target, this.#firstDelay());
  }

  unwatch(endpoint: EndpointState): void {
    const target = this.#targets.get(endpoint);
    if (!target) return;
    target.watched = false;
    this.#cancel(target);
    this.#targets.delete(endpoint);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // The first scrapes go out as soon as the pace allows, for readiness; jitter on later ones keeps endpoints from
    // scraping in lockstep.
    for (const target of this.#targets.values()) this.#schedule(target, this.#firstDelay());
  }

  stop(): void {
    this.#started = false;
    for (const target of this.#targets.values()) this.#cancel(target);
  }

  /** Scrapes every watched endpoint once now (joining scrapes already under way). */
  async refresh(): Promise<void> {
    await Promise.all([...this.#targets.values()].map((t) => this.#scrape(t)));
  }

  /**
   * The endpoint's scrapeDueAt follows: until the scrape due is read, its staleness may be this process's own stall.
   * A scrape under way keeps its own until it is read (#fetch).
   */
  #schedule(target: Target, delay: number): void {
    target.dueAt = this.#opts.now() + delay;
    if (!target.running) target.endpoint.scrapeDueAt = target.dueAt;
    clearTimeout(target.timer);
    target.timer = setTimeout(() => void this.#tick(target), delay);
    target.timer.unref();
  }

  #firstDelay(): number {
    return this.#opts.random() * this.#firstWithinMs;
  }

  #cancel(target: Target): void {
    clearTimeout(target.timer);
    target.dueAt = 0;
    target.endpoint.scrapeDueAt = 0;
  }

  async #tick(target: Target): Promise<void> {
    target.dueAt = 0;
    const started = this.#opts.now();
    target.startedAt = started;
    await this.#scrape(target);
    if (!this.#started || !target.watched) return;
    const elapsed = this.#opts.now() - started;
    const interval = this.#intervalMs;
    const jitter = this.#opts.random() * 0.1 * interval;
    this.#schedule(target, Math.max(0, interval - elapsed + jitter));
  }

  #scrape(target: Target): Promise<void> {
    target.running ??= this.#fetch(target).finally(() => {
      target.running = undefined;
    });
    return target.running;
  }

  async #fetch(target: Target): Promise<void> {
    const ep = target.endpoint;
    const started = this.#opts.now();
    const seen = ep.sentSinceScrape();
    try {
      const page = await this.#opts.source.fetch(ep.url);
      const now = this.#opts.now();
      const cut = page.cut === true || (target.cut && page.text.length >= UNCUT_BELOW);
      ep.recordScrape(readEngineMetrics(ep.engine, page.text, cut), now, now - started, seen);
      if (cut && !target.cut) this.#opts.onPageCut?.(ep);
      target.cut = cut;
      // Beside the scrape, not in it: a slow or hanging model list must not hold the next scrape back.
      void this.#readModels(target);
    } catch (err) {
      ep.recordScrapeFailure((err as Error).message);
    }
    // This scrape is read: the next one is due when its timer is (none pending: it is being set, or not scraped).
    ep.scrapeDueAt = target.dueAt;
    if (target.watched) target.done(ep);
  }

  /**
   * The model list of an endpoint that answers (once a MODELS_REFRESH_MS): its context length, and which names are its
   * base models and which its adapters, told to its pool at once (the scrape before did not know them).
   */
  async #readModels(target: Target): Promise<void> {
    const ep = target.endpoint;
    const source = this.#opts.source;
    const now = this.#opts.now();
    if (!source.fetchModels || (ep.modelsReadAt !== undefined && now - ep.modelsReadAt < modelsWait(ep, target))) return;
    const first = ep.modelsReadAt === undefined;
    ep.modelsReadAt = now;
    let reason: string | undefined;
    try {
      ep.models = readModelList(await source.fetchModels(ep.url));
      target.modelsFailures = 0;
      if (ep.contextWindow === undefined) reason = 'its model list gives no max_model_len';
    } catch (err) {
      // A server without /v1/models (or one that failed just then) keeps what was known; its metrics still count.
      target.modelsFailures++;
      reason = (err as Error).message;
    }
    if (target.watched) target.done(ep);
    // Told once: a vLLM started with --api-key answers 401 there, for good, and caps tollgate sets stay unclamped.
    if (first && reason !== undefined) this.#opts.onNoContextWindow?.(ep, reason);
  }
}

/** The first retry of a model list never read; each next one waits twice as long, up to MODELS_REFRESH_MS. */
const MODELS_RETRY_MS = 1000;

/**
 * How long after a model-list read the next one is due. One that failed before any worked (a timeout while the
 * engine or this gateway starts under load) is tried again within seconds, not a minute: until then the context
 * length is unknown, and token caps tollgate sets are not fitted to it.
 */
function modelsWait(ep: EndpointState, target: Target): number {
  if (ep.models !== undefined || target.modelsFailures === 0) return MODELS_REFRESH_MS;
  return Math.min(MODELS_REFRESH_MS, MODELS_RETRY_MS * 2 ** (target.modelsFailures - 1));
}
