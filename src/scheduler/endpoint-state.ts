// What the picker knows about one model-server endpoint: its last scraped metrics, its health,
// and this gateway's own traffic to it since that scrape.
import type { EndpointConfig } from '../config/runtime-config.js';
import type { Engine, EngineSnapshot, LoraSnapshot } from './engine-metrics.js';
import type { ModelList } from './model-card.js';
import { StatusLog } from './status-log.js';
import type { PickRequest } from './types.js';

/** Consecutive failed scrapes before an endpoint is taken out: one miss may be a GC pause on the model server. */
export const FAILURES_BEFORE_UNHEALTHY = 3;
/**
 * An endpoint whose answers are failures (5xx, 429) rests, not picked first, for this long after its first and twice
 * as long after each next one in a row, up to MAX_REST_MS (Envoy's outlier detection does the same). Its scrapes can
 * look idle all along: an engine that answers every request 503 has nothing running.
 */
const BASE_REST_MS = 100;
const MAX_REST_MS = 10_000;
/** Characters per token when a request's token count is not known (the prefix scorer's proxy too). */
export const CHARS_PER_TOKEN = 4;
/**
 * The prompt tokens an engine counted are weighed against the prompt characters sent to it over about this many
 * tokens: beyond, both sums are halved, so the ratio follows a change of traffic within a few such windows.
 */
const CHARS_PER_TOKEN_WINDOW = 1 << 22;

/** A learnt batch capacity below this is not used: a handful running with a few waiting is a transient, not a limit. */
export const MIN_LEARNT_CAPACITY = 4;

/**
 * A running count above this is not learnt as batch capacity: no engine batches more sequences (vLLM's max-num-seqs
 * defaults to 256–1024), and the learnt capacity only grows, so one absurd reading (1e308) left every slot free for
 * good and turned off keeping slots for critical work.
 */
export const MAX_LEARNT_CAPACITY = 4096;

export type EndpointStatus = 'pending' | 'ready' | 'stale' | 'unhealthy';

const NO_ADAPTERS: ReadonlySet<string> = new Set();
const EMPTY: EngineSnapshot = {
  waiting: 0,
  running: 0,
  kvCacheUsage: 0,
  blockSize: null,
  numGpuBlocks: null,
  modelName: null,
  lora: null,
  promptTokensTotal: null,
};

/** This gateway's picks, finished requests, prompt tokens and characters counted at one moment since an endpoint's last scrape. */
export interface SentSinceScrape {
  picks: number;
  done: number;
  tokens: number;
  chars: number;
}

export class EndpointState {
  #config: EndpointConfig;
  #engine: Engine;
  #metrics: EngineSnapshot = EMPTY;
  /** Time of the last successful scrape; 0 before the first. */
  #scrapedAt = 0;
  #scrapeMs = 0;
  #failedAnswers = 0;
  #restingUntil = 0;
  /** A request picked after a failed answer is out, unanswered (see resting). */
  #trying = false;
  #answeredAt = 0;
  #failures = 0;
  #lastError: string | null = null;
  /** The data plane could not reach it: out until a scrape succeeds again. */
  #reportedDown = false;
  #inFlight = 0;
  // Requests sent and finished since the last scrape was sent, so a burst does not all land on the endpoint
  // that looked idle at that scrape: the scrape has not seen them yet.
  #picksSinceScrape = 0;
  #doneSinceScrape = 0;
  #tokensSinceScrape = 0;
  #charsSinceScrape = 0;
  /** The engine's prompt-token counter at the last scrape; null before one that had it. */
  #promptTokensSeen: number | null = null;
  /** Prompt characters sent to it, and the prompt tokens it counted meanwhile, over recent traffic (promptCharsPerToken). */
  #charsSent = 0;
  #tokensCounted = 0;
  /**
   * The most requests ever seen running at once: a lower bound of the engine's batch capacity (vLLM max-num-seqs,
   * which the metrics do not export), the capacity used unless one is configured (setBatchCapacity).
   */
  #maxRunning = 0;
  #configuredCapacity = 0;
  /**
   * Its /v1/models: context length, base model names, adapters; undefined until read, or when the server gives none.
   * Read again now and then (modelsReadAt), as a restarted engine may change it.
   */
  models: ModelList | undefined;
  /** When /v1/models was last asked (the scraper's clock); undefined before the first time. */
  modelsReadAt: number | undefined;
  /** Which of its status changes are logged. */
  readonly statusLog = new StatusLog();
  /** When the scraper's next scrape of it falls (or fell) due, kept until that scrape is read; 0 while it is not scraped. */
  scrapeDueAt = 0;
  /** Each scorer's last score for this endpoint (NaN when it abstained), by the pipeline's scorer index; sized by the pipeline. */
  lastScores: Float64Array = new Float64Array(0);
  lastTotal = NaN;

  constructor(config: EndpointConfig, engine: Engine) {
    this.#config = config;
    this.#engine = engine;
  }

  get config(): EndpointConfig {
    return this.#config;
  }
  /** Which metric names its /metrics page uses. */
  get engine(): Engine {
    return this.#engine;
  }
  /** The engine's context length (prompt + output tokens), from its /v1/models (vLLM's max_model_len); undefined when not known. */
  get contextWindow(): number | undefined {
    return this.models?.contextWindow;
  }
  get address(): string {
    return this.#config.address;
  }
  get url(): string {
    return this.#config.url;
  }
  /** The last scrape as the server reported it. */
  get metrics(): Readonly<EngineSnapshot> {
    return this.#metrics;
  }
  get scrapedAt(): number {
    return this.#scrapedAt;
  }
  /** How long the last scrape took to answer. */
  get scrapeMs(): number {
    return this.#scrapeMs;
  }

  get answeredAt(): number {
    return this.#answeredAt;
  }
  get consecutiveFailures(): number {
    return this.#failures;
  }
  get lastError(): string | null {
    return this.#lastError;
  }
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Waiting requests now: the scraped queue plus what this gateway sent (less what finished) since. */
  get queue(): number {
    const q = this.#metrics.waiting + this.#picksSinceScrape - this.#doneSinceScrape;
    return q > 0 ? q : 0;
  }

  /**
   * Requests waiting in the engine now, as saturation sees it. What this gateway sent since the scrape waits only when
   * the engine was already queueing then, or beyond its known batch capacity; otherwise the engine runs it at once
   * (a fast server scraped between answers shows nothing running, and its in-flight requests are not a queue).
   * `queue`, which counts every request sent since the scrape, stays the scorers' signal against bursts.
   */
  get engineQueue(): number {
    const m = this.#metrics;
    const sent = this.#picksSinceScrape - this.#doneSinceScrape;
    if (m.waiting > 0) return m.waiting + sent > 0 ? m.waiting + sent : 0;
    const known = this.#configuredCapacity > 0 || this.#maxRunning >= MIN_LEARNT_CAPACITY;
    if (!known) return 0;
    const overflow = m.running + sent - this.batchCapacity;
    return overflow > 0 ? overflow : 0;
  }

  /** Waiting plus running requests now, never below what this gateway alone has outstanding. */
  get load(): number {
    const l = this.#metrics.waiting + this.#metrics.running + this.#picksSinceScrape - this.#doneSinceScrape;
    return l > this.#inFlight ? l : this.#inFlight;
  }

  /** Requests the engine runs at once (max-num-seqs): configured, else the most seen running; 0 before any. */
  get batchCapacity(): number {
    return this.#configuredCapacity > 0 ? this.#configuredCapacity : this.#maxRunning;
  }

  /** A fixed batch capacity (0: learn it from scrapes). */
  setBatchCapacity(capacity: number): void {
    this.#configuredCapacity = capacity > 0 ? Math.floor(capacity) : 0;
  }

  /**
   * Batch slots free now: capacity − load. A learnt capacity is only a lower bound, so while the last scrape showed
   * no queue (the engine took everything it was sent) one more request than the most seen running is allowed
   * (Infinity until MIN_LEARNT_CAPACITY were seen running):
   * the bound grows to the true capacity, and at the true capacity at most one request waits in the engine.
   */
  get freeSlots(): number {
    if (this.#configuredCapacity > 0) return this.#configuredCapacity - this.load;
    // Too small a batch seen to say anything (no real engine runs fewer than MIN_LEARNT_CAPACITY at once): nothing
    // held, the queue-depth rule alone applies.
    if (this.#maxRunning < MIN_LEARNT_CAPACITY) return Infinity;
    return this.#maxRunning + (this.#metrics.waiting === 0 ? 1 : 0) - this.load;
  }

  /** KV-cache usage now: the scraped figure plus the prompts sent (less those finished) since, when the cache size is known. */
  get kvCacheUsage(): number {
    const m = this.#metrics;
    if (this.#tokensSinceScrape === 0 || !m.blockSize || !m.numGpuBlocks) return m.kvCacheUsage;
    const kv = m.kvCacheUsage + this.#tokensSinceScrape / (m.blockSize * m.numGpuBlocks);
    return kv < 0 ? 0 : kv < 1 ? kv : 1;
  }

  get lora(): LoraSnapshot | null {
    return this.#metrics.lora;
  }
  get runningAdapters(): ReadonlySet<string> {
    return this.#metrics.lora?.running ?? NO_ADAPTERS;
  }

  get healthy(): boolean {
    return !this.#reportedDown && this.#failures < FAILURES_BEFORE_UNHEALTHY;
  }

  /** Not scraped yet and not failing: new in the pool (a start, a reload), its first metrics on the way. */
  get awaitingFirstScrape(): boolean {
    return this.#scrapedAt === 0 && this.healthy;
  }

  /** Healthy and scraped within `staleAfter` ms (but see #dueScrapeUnread): the only endpoints picks may choose. */
  isEligible(now: number, staleAfter: number): boolean {
    return this.#scrapedAt > 0 && (now - this.#scrapedAt <= staleAfter || this.#dueScrapeUnread(staleAfter)) && this.healthy;
  }

  status(now: number, staleAfter: number): EndpointStatus {
    if (!this.healthy) return 'unhealthy';
    if (this.#scrapedAt === 0) return 'pending';
    return now - this.#scrapedAt <= staleAfter || this.#dueScrapeUnread(staleAfter) ? 'ready' : 'stale';
  }

  /**
   * Its metrics older than staleAfter are not stale yet while the scrape that fell due when they were fresh has not been
   * read (at most a scrape timeout later, when that scrape is slow): the staleness is this gateway's own. After this
   * process stalled past staleAfter (a long GC, a host short of CPU), every endpoint looked stale until the timers and
   * answers that waited meanwhile had run, and the requests read first got 503s.
   */
  #dueScrapeUnread(staleAfter: number): boolean {
    return this.scrapeDueAt > 0 && this.scrapeDueAt - this.#scrapedAt <= staleAfter;
  }

  rebind(config: EndpointConfig, engine: Engine): void {
    this.#config = config;
    this.#engine = engine;
  }

  /** This gateway's traffic counted since the last scrape, now: what a scrape sent now will have seen (recordScrape). */
  sentSinceScrape(): SentSinceScrape {
    return { picks: this.#picksSinceScrape, done: this.#doneSinceScrape, tokens: this.#tokensSinceScrape, chars: this.#charsSinceScrape };
  }

  /**
   * Characters of this gateway's prompts per prompt token the engine counted, over recent traffic; undefined until it
   * counted some (or when it exports no counter). Below the usual 4 for token-dense text (code, identifiers, CJK), and
   * for an engine that others (gateway replicas, other pools) send prompts to as well: either way its KV cache holds
   * fewer characters of this gateway's prompts than 4 per token of its size.
   */
  get promptCharsPerToken(): number | undefined {
    return this.#tokensCounted > 0 && this.#charsSent > 0 ? this.#charsSent / this.#tokensCounted : undefined;
  }

  /**
   * `tookMs`: how long the scrape took to answer (a slow /metrics makes every reading that much older). `seen`: what
   * sentSinceScrape() said when the scrape was sent; what was sent or finished after that still counts, as the page
   * predates it (a /metrics that takes 230 ms would otherwise wipe most of the picks of each interval).
   */
  recordScrape(metrics: EngineSnapshot, now: number, tookMs = 0, seen: SentSinceScrape = this.sentSinceScrape()): void {
    if (metrics.running > this.#maxRunning && metrics.running <= MAX_LEARNT_CAPACITY) this.#maxRunning = metrics.running;
    this.#metrics = metrics;
    this.#scrapedAt = now;
    this.#scrapeMs = tookMs;
    this.#failures = 0;
    this.#lastError = null;
    this.#reportedDown = false;
    // A request counted in `seen` that never reached the server came off already (recordRelease).
    this.#picksSinceScrape = Math.max(0, this.#picksSinceScrape - seen.picks);
    this.#doneSinceScrape -= seen.done;
    this.#tokensSinceScrape -= seen.tokens;
    this.#learnCharsPerToken(metrics.promptTokensTotal, seen.chars);
    this.#charsSinceScrape -= seen.chars;
  }

  /** `chars`: prompt characters sent since the scrape before, which the counter went up by `total` less its last value for. */
  #learnCharsPerToken(total: number | null, chars: number): void {
    const before = this.#promptTokensSeen;
    this.#promptTokensSeen = total;
    // Without the counter then and now, or when it went back (the engine restarted), the interval says nothing.
    if (total === null || before === null || total < before) return;
    this.#tokensCounted += total - before;
    this.#charsSent += chars;
    if (this.#tokensCounted > CHARS_PER_TOKEN_WINDOW) {
      this.#tokensCounted /= 2;
      this.#charsSent /= 2;
    }
  }

  recordScrapeFailure(error: string): void {
    this.#failures++;
    this.#lastError = error;
  }

  /** The data plane could not reach the endpoint: take it out now rather than at the next failed scrapes. */
  reportDown(error: string): void {
    this.#reportedDown = true;
    this.#lastError = error;
  }

  /** `promptChars`: the prompt's length in characters, weighed against the tokens the engine counts (promptCharsPerToken). */
  recordPick(promptTokens: number, promptChars = 0): void {
    // Picked while its last answer was a failure: this request tries it, and until an answer says how that went it
    // counts as resting, so a queue that waited out its rest does not drain onto a server that may fail them all.
    if (this.#failedAnswers > 0) this.#trying = true;
    this.#inFlight++;
    this.#picksSinceScrape++;
    this.#tokensSinceScrape += promptTokens;
    this.#charsSinceScrape += promptChars;
  }

  /** The request counted by recordPick(promptTokens) ended; `reached` says whether the server saw it at all. */
  recordRelease(reached: boolean, promptTokens: number, now: number, status?: number): void {
    if (this.#inFlight > 0) this.#inFlight--;
    // Finished requests free their queue slot and KV blocks, whether sent before or after the scrape.
    this.#tokensSinceScrape -= promptTokens;
    if (reached) {
      this.#doneSinceScrape++;
      this.recordAnswered(now, status);
    } else {
      this.#picksSinceScrape = Math.max(0, this.#picksSinceScrape - 1);
      this.#trying = false;
    }
  }

  /** It answered a request with `status` (undefined: an answer whose status is not known). */
  recordAnswered(now: number, status?: number): void {
    this.#answeredAt = now;
    this.#trying = false;
    if (status === undefined) return;
    if (status >= 500 || status === 429) {
      this.#failedAnswers++;
      this.#restingUntil = now + Math.min(BASE_REST_MS * 2 ** Math.min(this.#failedAnswers - 1, 16), MAX_REST_MS);
    } else {
      this.#failedAnswers = 0;
      this.#restingUntil = 0;
    }
  }

  /**
   * Whether its last answers failed recently enough that others should be tried first (recordAnswered), or, its rest
   * over, one request is trying it (a circuit breaker's half-open state) and has not been answered yet.
   */
  resting(now: number): boolean {
    return now < this.#restingUntil || this.#trying;
  }

  /** How much longer it rests (0 when it does not). */
  restingMs(now: number): number {
    return Math.max(0, Math.round(this.#restingUntil - now));
  }
}

/** Token estimate for accounting when the caller did not count them: from the whole prompt's length. */
export function estimateTokens(req: Pick<PickRequest, 'promptTokens' | 'prompt' | 'promptChars'>): number {
  return req.promptTokens ?? Math.ceil((req.promptChars ?? req.prompt.length) / CHARS_PER_TOKEN);
}
