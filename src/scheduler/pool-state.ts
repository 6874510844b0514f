// One pool's live state: its endpoints, compiled profile, flow-control queue and recent decisions;
// where a pick is decided, queued or refused, and where releases and scrapes feed back.
import type { PoolConfig } from '../config/runtime-config.js';
import { gatewayError, type GatewayError } from '../gateway/errors.js';
import type { Logger } from '../lib/logger.js';
import { DecisionLog } from './decision-log.js';
import { EndpointState, estimateTokens } from './endpoint-state.js';
import { decisionView, endpointView, type PoolView } from './fleet-view.js';
import { FlowControl, SATURATED_RETRY, type DrainState } from './flow-control.js';
import type { PoolGauges, SchedulerMetrics } from './metrics.js';
import type { Pipeline } from './pipeline.js';
import type { CycleContext, SchedulerSettings } from './plugin-types.js';
import { isSaturated, utilization } from './saturation.js';
import type { Pick, PickRequest, RequestOutcome } from './types.js';
import { keepEndpoints } from './keep-endpoints.js';
import { ModelNames } from './model-names.js';

/** Decisions kept per pool for the fleet view. */
const DECISIONS_KEPT = 100;
/** flowControl.reservedSlots when not configured. */
export const DEFAULT_RESERVED_SLOTS = 1;

export interface PoolDeps {
  /** Replaced when the settings are reloaded (Scheduler.configure): read it at each use, never keep a copy. */
  settings: SchedulerSettings;
  logger: Logger;
  metrics: SchedulerMetrics;
  now: () => number;
}

/** A compiled profile and the config text it came from, so a reload with the same config keeps its state (the prefix index). */
export interface CompiledProfile {
  pipeline: Pipeline;
  key: string;
}

export class PoolState implements PoolGauges {
  #name: string;
  readonly #deps: PoolDeps;
  #config: PoolConfig;
  #endpoints: EndpointState[] = [];
  /** By url, which identifies an endpoint for good: its address (ip:port) follows its host name's DNS answers. */
  readonly #byUrl = new Map<string, EndpointState>();
  #profile: CompiledProfile;
  #scorers: string[];
  #decisions: DecisionLog;
  readonly #flow: FlowControl;
  readonly #modelNames = new ModelNames();
  /** Requests decided and not yet released, by priority: whether priorities mix, and whether critical work runs. */
  readonly #running = new Map<number, number>();

  constructor(config: PoolConfig, profile: CompiledProfile, deps: PoolDeps) {
    this.#name = config.name;
    this.#deps = deps;
    this.#config = config;
    this.#profile = profile;
    this.#scorers = profile.pipeline.scorerNames;
    this.#decisions = new DecisionLog(DECISIONS_KEPT, this.#scorers.length);
    this.#flow = new FlowControl({
      // Read at each enqueue, so reloaded limits apply to the next request.
      get settings() {
        return deps.settings.flowControl;
      },
      now: deps.now,
      observe: (priority, outcome, seconds) => deps.metrics.observeQueue(this.name, priority, outcome, seconds),
    });
    this.update(config, null);
  }

  get name(): string {
    return this.#name;
  }
  get config(): PoolConfig {
    return this.#config;
  }
  get endpoints(): readonly EndpointState[] {
    return this.#endpoints;
  }
  get profileKey(): string {
    return this.#profile.key;
  }

  /** The pool was renamed (Scheduler.update): its state, queue and in-flight requests go on under the new name. */
  rename(name: string): void {
    this.#name = name;
  }

  /**
   * Applies a reloaded config, keeping the state of endpoints that stay (and of the profile when
   * `profile` is null); returns the endpoints that joined and left.
   */
  update(config: PoolConfig, profile: CompiledProfile | null): { added: EndpointState[]; removed: EndpointState[] } {
    const added: EndpointState[] = [];
    const removed: EndpointState[] = [];
    const next: EndpointState[] = [];
    const keep = new Set<string>();
    for (const cfg of config.endpoints) {
      if (keep.has(cfg.url)) continue;
      keep.add(cfg.url);
      let ep = this.#byUrl.get(cfg.url);
      if (ep) ep.rebind(cfg, config.engine);
      else {
        ep = new EndpointState(cfg, config.engine);
        this.#byUrl.set(cfg.url, ep);
        added.push(ep);
      }
      next.push(ep);
    }
    for (const ep of this.#endpoints) {
      if (keep.has(ep.url)) continue;
      this.#byUrl.delete(ep.url);
      this.#profile.pipeline.forget(ep);
      this.#modelNames.forget(ep);
      removed.push(ep);
    }
    this.#config = config;
    this.#endpoints = next;
    const capacity = config.picker?.flowControl?.batchCapacity ?? 0;
    for (const ep of next) ep.setBatchCapacity(capacity);
    if (profile) {
      this.#profile = profile;
      this.#scorers = profile.pipeline.scorerNames;
      this.#decisions = new DecisionLog(DECISIONS_KEPT, this.#scorers.length);
      // Scores of another profile mean nothing under this one's scorer names; the pipeline sizes them anew.
      for (const ep of next) ep.lastScores = new Float64Array(0);
    }
    this.#drain();
    return { added, removed };
  }

  /**
   * A decision now (synchronously), a promise when the request must wait for room, or a rejection:
   * 503 without eligible endpoints (in the subset hint, when there is one), 429 for sheddable requests while
   * saturated, 503 when the queue is full.
   */
  pick(req: PickRequest): Pick | Promise<Pick> {
    const now = this.#deps.now();
    // The Endpoint Picker Protocol's 503 for a hint with nothing eligible is owed now: queued, it waited for room it
    // could never use (Envoy's 200 ms message timeout gave up first), and a sheddable request got a 429 instead.
    if (req.subset && !this.#anyInSubset(req.subset, now)) return Promise.reject(this.#subsetRefused(req.subset));
    if (!this.#anyEligible(now)) {
      // Endpoints just added (a start, a reload that replaced them) have their first scrape on the way: wait for it.
      if (this.#anyAwaitingFirstScrape()) return this.#flow.enqueue(req);
      return Promise.reject(gatewayError('TG_ERR_NO_ENDPOINTS', `no healthy endpoint with fresh metrics in pool "${this.name}"`));
    }
    if (this.#flow.size > 0) this.#drain();
    const kept = this.#slotsKept(req.priority);
    // Whatever is still queued after draining waits for room: this request queues too, by its priority.
    if (this.#flowControl && (this.#flow.size > 0 || isSaturated(this.#endpoints, now, this.#deps.settings, kept))) {
      if (req.priority < 0) return Promise.reject(this.#shed());
      const waiting = this.#flow.enqueue(req);
      // Queued ahead of requests that wait for slots it may use (reserved ones), it can go at once.
      this.#drain();
      return waiting;
    }
    try {
      return this.#decide(req, now, 0, kept);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** After every scrape attempt of one of this pool's endpoints, and every read of its model list. */
  scraped(ep: EndpointState): void {
    this.#modelNames.note(ep);
    this.#noteStatus(ep, this.#deps.now());
    this.#drain();
  }

  /** The scheduler settings were reloaded: looser thresholds may let queued requests go now. */
  settingsChanged(): void {
    this.#drain();
  }

  /** Rejects everything still queued (the pool is gone, or the gateway is stopping). */
  close(err: Error): void {
    this.#flow.rejectAll(err);
  }

  /** The smallest context length its endpoints report (a request may land on any of them); undefined when none does. */
  contextWindow(): number | undefined {
    let smallest: number | undefined;
    for (const ep of this.#endpoints) {
      const n = ep.contextWindow;
      if (n !== undefined && (smallest === undefined || n < smallest)) smallest = n;
    }
    return smallest;
  }

  /** At least one endpoint has fresh metrics or answered a request within staleAfter. */
  reachable(): boolean {
    const now = this.#deps.now();
    const { staleAfter } = this.#deps.settings;
    return this.#endpoints.some((ep) => ep.isEligible(now, staleAfter) || (ep.answeredAt > 0 && now - ep.answeredAt <= staleAfter));
  }

  view(): PoolView {
    const now = this.#deps.now();
    const { settings } = this.#deps;
    return {
      name: this.name,
      engine: this.#config.engine,
      saturated: isSaturated(this.#endpoints, now, settings, this.#batchSlotsKept(0)),
      scrapeIntervalMs: settings.scrapeInterval,
      utilization: utilization(this.#endpoints, now, settings),
      queueLength: this.#flow.size,
      queueByPriority: this.#flow.lengths(),
      profile: this.#profile.pipeline.describe(),
      endpoints: this.#endpoints.map((ep) => endpointView(ep, now, settings.staleAfter, this.#scorers)),
      decisions: this.#decisions.recent().map((d) => decisionView(d, this.#scorers)),
    };
  }

  averageKvCacheUsage(): number {
    return this.#average((ep) => ep.kvCacheUsage);
  }
  averageQueueSize(): number {
    return this.#average((ep) => ep.queue);
  }
  readyEndpoints(): number {
    const now = this.#deps.now();
    return this.#endpoints.filter((ep) => ep.isEligible(now, this.#deps.settings.staleAfter)).length;
  }
  queueLengths(): { priority: number; length: number }[] {
    return this.#flow.lengths();
  }

  /** Off (EndpointPickerConfig flowControl.enabled: false): nothing is held, shed or steered to free batch slots. */
  get #flowControl(): boolean {
    return this.#config.picker?.flowControl?.enabled ?? true;
  }

  /**
   * How batch capacity limits a request of `priority`: null when it does not (every request in the pool has this
   * priority), else the free slots per endpoint it must leave (flowControl.reservedSlots for priority ≤ 0 while
   * requests above 0 run; 0 otherwise).
   *
   * Holding requests once every batch is full only pays when priorities mix: then the gateway, not an engine's FIFO
   * queue, decides who goes first. With one priority the engine serves its queue in the same order, and holding
   * costs: a request whose prompt an engine has cached goes to whichever engine frees a slot first (shared
   * prefixes at 45 req/s: prefix hits 0.90 → 0.51 of prompt tokens, TTFT p90 0.56 → 1.36 s).
   * Reserved slots: once every batch is full a critical request would wait for some request to finish; with one
   * slot kept per endpoint it starts at once, and other work gives it up only while critical work is around.
   */
  #batchSlotsKept(priority: number): number | null {
    let mixed = false;
    let critical = false;
    for (const [p, n] of this.#running) {
      if (n === 0) continue;
      if (p !== priority) mixed = true;
      if (p > 0) critical = true;
    }
    if (!mixed && this.#flow.size > 0) mixed = this.#flow.lengths().some((l) => l.priority !== priority);
    if (!mixed) return null;
    if (priority > 0 || !critical) return 0;
    return this.#config.picker?.flowControl?.reservedSlots ?? DEFAULT_RESERVED_SLOTS;
  }

  /** #batchSlotsKept under flow control; null without it, when nothing is held for batch slots. */
  #slotsKept(priority: number): number | null {
    return this.#flowControl ? this.#batchSlotsKept(priority) : null;
  }

  /**
   * Under flow control (`kept` from #slotsKept), the endpoints with a free batch slot when some eligible one has one
   * and some do not (a request sent to a full batch would wait in the engine's FIFO queue); otherwise every endpoint.
   * Resting ones are not among them: a failing engine's batch looks free, and the healthy filter takes it only when
   * every eligible endpoint rests.
   */
  #roomy(now: number, kept: number | null): readonly EndpointState[] {
    if (kept === null) return this.#endpoints;
    const all = this.#endpoints;
    const out = keepEndpoints(all, (ep) => ep.freeSlots > kept && !ep.resting(now));
    if (out === all) return all;
    const { staleAfter } = this.#deps.settings;
    return out.some((ep) => ep.isEligible(now, staleAfter)) ? out : all;
  }

  /** `kept`: what #slotsKept(req.priority) answers, when the caller has it already. */
  #decide(req: PickRequest, now: number, queuedMs: number, kept: number | null = this.#slotsKept(req.priority)): Pick {
    const started = performance.now();
    const ctx: CycleContext = { request: req, now, adapter: this.#modelNames.isAdapter(req.targetModel) };
    const roomy = this.#roomy(now, kept);
    let ordered = this.#profile.pipeline.run(ctx, roomy);
    // The filters (subset hint, adapters) may keep only full endpoints: then they all compete.
    if (!ordered && roomy !== this.#endpoints) ordered = this.#profile.pipeline.run(ctx, this.#endpoints);
    else if (ordered && roomy !== this.#endpoints) {
      // The full endpoints stay as the last fallbacks (unscored, in pool order), with the filters' verdict on them;
      // resting ones do not, as the healthy filter drops them while awake ones (these roomy ones) remain.
      const inRoomy = new Set(roomy);
      const rest = this.#endpoints.filter((ep) => !inRoomy.has(ep) && !ep.resting(now));
      const filtered = this.#profile.pipeline.filterOnly(ctx, rest);
      ordered = ordered.concat(filtered);
    }
    if (!ordered) {
      if (req.subset) throw this.#subsetRefused(req.subset);
      throw gatewayError('TG_ERR_NO_ENDPOINTS', `pool "${this.name}": the filters left no endpoint`);
    }
    const chosen = ordered[0];
    const endpoints = new Array<PoolConfig['endpoints'][number]>(ordered.length);
    for (let i = 0; i < ordered.length; i++) endpoints[i] = ordered[i].config;
    this.#decisions.record(now, req.targetModel, chosen.address, chosen.lastScores, chosen.lastTotal, req.priority, queuedMs);
    this.#deps.metrics.observeDecision((performance.now() - started) / 1000);
    return this.#accounted(ctx, chosen, endpoints);
  }

  /**
   * The pick, counted (in-flight, picks since the scrape, its priority running) on one endpoint at a time: the chosen
   * one, then each fallback it goes on to (fallback()); that endpoint's release drops the count once. Any endpoint that
   * could not be reached is taken out.
   */
  #accounted(ctx: CycleContext, chosen: EndpointState, endpoints: PoolConfig['endpoints']): Pick {
    const { priority } = ctx.request;
    const tokens = estimateTokens(ctx.request);
    const chars = ctx.request.promptChars ?? ctx.request.prompt.length;
    const count = (ep: EndpointState): EndpointState => {
      ep.recordPick(tokens, chars);
      this.#running.set(priority, (this.#running.get(priority) ?? 0) + 1);
      return ep;
    };
    let counted: EndpointState | null = count(chosen);
    const release = (endpoint: PoolConfig['endpoints'][number], outcome: RequestOutcome) => {
      const now = this.#deps.now();
      if (counted && endpoint.url === counted.url) {
        const ep = counted;
        counted = null;
        this.#running.set(priority, (this.#running.get(priority) ?? 1) - 1);
        ep.recordRelease(outcome.reached, tokens, now, outcome.status);
        if (!outcome.reached && !outcome.abandoned) this.#reportDown(ep, now);
      } else {
        const ep = this.#byUrl.get(endpoint.url);
        if (ep && outcome.reached) ep.recordAnswered(now, outcome.status);
        else if (ep && !outcome.abandoned) this.#reportDown(ep, now);
      }
      this.#drain();
    };
    const fallback = (endpoint: PoolConfig['endpoints'][number]) => {
      // Counted on one endpoint at a time: the one before must have been released (and one that left the pool in a
      // reload meanwhile is not counted at all).
      const ep = counted ? undefined : this.#byUrl.get(endpoint.url);
      if (!ep) return;
      counted = count(ep);
      this.#profile.pipeline.fallback(ctx, ep);
    };
    return { endpoints, release, fallback };
  }

  #reportDown(ep: EndpointState, now: number): void {
    ep.reportDown('a request could not reach it');
    this.#noteStatus(ep, now);
  }

  #noteStatus(ep: EndpointState, now: number): void {
    const line = ep.statusLog.note(ep.status(now, this.#deps.settings.staleAfter), now);
    if (!line) return;
    const { status, was, flaps } = line;
    const fields = { pool: this.name, endpoint: ep.address, status, was, ...(flaps > 0 && { flaps }) };
    if (status === 'ready') this.#deps.logger.info(fields, 'endpoint recovered');
    else this.#deps.logger.warn({ ...fields, failures: ep.consecutiveFailures, error: ep.lastError }, `endpoint ${status}, not picked until it recovers`);
  }

  #drain(): void {
    if (this.#flow.size === 0) return;
    this.#flow.drain(this.#drainState, this.#dispatch);
    // Sheddable requests queue only for a pool's first scrape (pick). Still queued with an endpoint eligible, the pool
    // is saturated: they get the 429 an arrival gets now, where they waited out maxWait for a 503.
    if ((this.#flow.tailPriority ?? 0) < 0 && this.#anyEligible(this.#deps.now())) this.#flow.rejectBelow(0, this.#shed());
  }

  #shed(): GatewayError {
    return gatewayError('TG_ERR_REQUEST_SHED', `pool "${this.name}" is saturated; sheddable requests are refused`, SATURATED_RETRY);
  }

  readonly #drainState = (): DrainState => {
    const now = this.#deps.now();
    // Queued requests were promised up to maxWait: every endpoint out at once is usually a moment (one request's
    // reset connection, a few failed scrapes), and the next good scrape drains the queue (new arrivals get the 503
    // meanwhile). Endpoints that never answered a scrape are no such moment: nothing to wait for.
    if (!this.#anyEligible(now)) return this.#anyAwaitingFirstScrape() || this.#anyScraped() ? 'wait' : 'none';
    // A reload that turned flow control off lets everything still queued go.
    if (!this.#flowControl) return 'dispatch';
    const kept = this.#batchSlotsKept(this.#flow.headPriority ?? 0);
    return isSaturated(this.#endpoints, now, this.#deps.settings, kept) ? 'wait' : 'dispatch';
  };

  readonly #dispatch = (req: PickRequest, queuedMs: number): Pick => {
    // Queued under a configuration a reload has replaced: what it asks of the servers (the target model drawn for the
    // old ones) is settled again under the one in force before it goes to them.
    if (req.pool !== this.#config) req.reconfigured?.(this.#config);
    return this.#decide(req, this.#deps.now(), queuedMs);
  };

  #anyAwaitingFirstScrape(): boolean {
    for (const ep of this.#endpoints) if (ep.awaitingFirstScrape) return true;
    return false;
  }

  /** An endpoint has answered a scrape since it joined the pool: one out now may well be back at the next. */
  #anyScraped(): boolean {
    for (const ep of this.#endpoints) if (ep.scrapedAt > 0) return true;
    return false;
  }

  /** An endpoint of the subset hint is eligible, or has its first scrape on the way (a request for it waits, as for any). */
  #anyInSubset(subset: ReadonlySet<string>, now: number): boolean {
    const { staleAfter } = this.#deps.settings;
    for (const ep of this.#endpoints) if (subset.has(ep.address) && (ep.isEligible(now, staleAfter) || ep.awaitingFirstScrape)) return true;
    return false;
  }

  #subsetRefused(subset: ReadonlySet<string>): GatewayError {
    return gatewayError('TG_ERR_NO_ENDPOINTS', `pool "${this.name}": none of the ${subset.size} endpoints of the subset hint is available`);
  }

  #anyEligible(now: number): boolean {
    const { staleAfter } = this.#deps.settings;
    for (const ep of this.#endpoints) if (ep.isEligible(now, staleAfter)) return true;
    return false;
  }

  #average(read: (ep: EndpointState) => number): number {
    const now = this.#deps.now();
    let sum = 0;
    let n = 0;
    for (const ep of this.#endpoints) {
      if (!ep.isEligible(now, this.#deps.settings.staleAfter)) continue;
      sum += read(ep);
      n++;
    }
    return n === 0 ? 0 : sum / n;
  }
}
