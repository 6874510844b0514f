// Fetching an endpoint's /metrics page (and, now and then, its /v1/models): keep-alive undici Clients per endpoint,
// with a short timeout.
import { Client } from 'undici';
import { readPrefix } from '../lib/read-capped.js';
import { DEFAULT_UPSTREAM_TLS, type UpstreamTls } from '../lib/upstream-tls.js';

/** A /metrics page as read. */
export interface MetricsPage {
  text: string;
  /** Only its first lines came, MAX_PAGE_BYTES at most: series further down are missing. */
  cut?: boolean;
}

export interface MetricsSource {
  /** The Prometheus text at `<url>/metrics`; rejects on any failure, including a non-200 answer. */
  fetch(url: string): Promise<MetricsPage>;
  /** The OpenAI model list at `<url>/v1/models` (vLLM's says each model's max_model_len); rejects as fetch does. */
  fetchModels?(url: string): Promise<string>;
  /** Drops connections to endpoints no longer in any pool. */
  retain(urls: ReadonlySet<string>): void;
  close(): Promise<void>;
}

export interface HttpMetricsSourceOptions {
  /** Bounds a whole scrape, from connecting to the last byte. */
  timeoutMs: number;
  /** How https endpoints' certificates are checked: as the proxy checks them (UpstreamPools.tls). */
  tls?: UpstreamTls;
}

export class HttpMetricsSource implements MetricsSource {
  /**
   * By endpoint url, one for /metrics and one for /v1/models. A Client is one connection: a model list that hung held
   * the scrapes queued behind it, and its timeout, which destroys its Client, failed them ("The client is destroyed").
   */
  readonly #scrapeClients = new Map<string, Client>();
  readonly #modelClients = new Map<string, Client>();
  #timeoutMs: number;
  #tls: UpstreamTls;

  /** `timeoutMs` bounds a whole scrape, from connecting to the last byte; https endpoints verify as the proxy does. */
  constructor(timeoutMs: number, opts: { tls?: UpstreamTls } = {}) {
    this.#timeoutMs = timeoutMs;
    this.#tls = opts.tls ?? DEFAULT_UPSTREAM_TLS;
  }

  /**
   * New limits (a reload), for the scrapes that start from now on. Connections made under the old ones (their connect
   * timeout and certificate check are fixed) close once their scrape under way is done; the next scrape reconnects.
   */
  configure(opts: HttpMetricsSourceOptions): void {
    const tls = opts.tls ?? DEFAULT_UPSTREAM_TLS;
    if (opts.timeoutMs === this.#timeoutMs && tls === this.#tls) return;
    this.#timeoutMs = opts.timeoutMs;
    this.#tls = tls;
    for (const clients of [this.#scrapeClients, this.#modelClients]) {
      for (const client of clients.values()) void client.close().catch(() => {});
      clients.clear();
    }
  }

  /**
   * A page past MAX_PAGE_BYTES comes cut after its last whole line within them: a long-running vLLM's grows by a
   * vllm:lora_requests_info line for every label set it ever had, below the series the picker needs most (requests,
   * KV cache), and failing every scrape took a healthy server out of its pool.
   */
  async fetch(url: string): Promise<MetricsPage> {
    const { bytes, cut } = await this.#get(this.#scrapeClients, url, '/metrics', 'text/plain');
    if (!cut) return { text: bytes.toString('utf8') };
    return { text: bytes.subarray(0, bytes.lastIndexOf(10 /* \n */) + 1).toString('utf8'), cut };
  }

  async fetchModels(url: string): Promise<string> {
    const { bytes, cut } = await this.#get(this.#modelClients, url, '/v1/models', 'application/json');
    if (cut) throw new Error(`GET /v1/models answered more than ${MAX_PAGE_BYTES} bytes`);
    return bytes.toString('utf8');
  }

  /** The answer's first MAX_PAGE_BYTES at most, and whether there was more; over the Client of `clients` for `url`. */
  async #get(clients: Map<string, Client>, url: string, path: string, accept: string): Promise<{ bytes: Buffer; cut: boolean }> {
    const timeoutMs = this.#timeoutMs;
    let client = clients.get(url);
    if (!client) {
      client = new Client(url, { connect: { timeout: timeoutMs, ...this.#tls }, keepAliveTimeout: 30_000, pipelining: 1 });
      clients.set(url, client);
    }
    // undici's own timeouts tick at about one second; a scrape deadline has to be sharper than that. Not
    // AbortSignal.timeout: its timer runs out (and builds a DOMException) after every scrape, even a finished one,
    // hundreds of times a second across a pool.
    const controller = new AbortController();
    const started = performance.now();
    let graced = false;
    let expire!: (err: Error) => void;
    // Raced, not only passed to undici as the signal: a Client that met a certificate for another host (undici 7,
    // nodejs/undici#5355) leaves its next request queued for good and ignores that request's abort.
    const deadline = new Promise<never>((_, reject) => (expire = reject));
    // A deadline that fires late found this process stalled (a CPU-starved host), not the endpoint: the answer may be
    // in the socket, unread. It gets one more period with the loop free before the scrape counts as failed, or
    // healthy endpoints would be counted down for the gateway's own stall.
    const onDeadline = () => {
      if (!graced && performance.now() - started > 2 * timeoutMs) {
        graced = true;
        timer = setTimeout(onDeadline, timeoutMs);
        return;
      }
      const err = new Error(`GET ${path} took longer than ${timeoutMs} ms`);
      controller.abort(err);
      expire(err);
    };
    let timer = setTimeout(onDeadline, timeoutMs);
    try {
      const res = await Promise.race([client.request({ method: 'GET', path, headers: { accept }, signal: controller.signal }), deadline]).catch((err: unknown) => {
        // A connection that failed (a bad certificate above all) or hung gets a fresh Client for the next scrape:
        // the old one may be wedged, and there is no kept-alive connection in it worth keeping.
        drop(clients, url, client);
        throw err;
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new Error(`GET ${path} answered ${res.statusCode}`);
      }
      return await Promise.race([readPrefix(res.body, MAX_PAGE_BYTES), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  retain(urls: ReadonlySet<string>): void {
    for (const clients of [this.#scrapeClients, this.#modelClients]) {
      for (const [url, client] of clients) if (!urls.has(url)) drop(clients, url, client);
    }
  }

  async close(): Promise<void> {
    const all = [...this.#scrapeClients.values(), ...this.#modelClients.values()];
    this.#scrapeClients.clear();
    this.#modelClients.clear();
    await Promise.all(all.map((c) => c.destroy().catch(() => {})));
  }
}

function drop(clients: Map<string, Client>, url: string, client: Client): void {
  if (clients.get(url) === client) clients.delete(url);
  void client.destroy().catch(() => {});
}

/**
 * A /metrics page is some KiB (a vLLM with many LoRA adapters a few hundred): one of 40 MiB, read and parsed on the
 * event loop up to twenty times a second, held it 200–460 ms each time. What comes after is not read.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
