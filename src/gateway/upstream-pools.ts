// One undici connection pool per model-server origin, kept across config reloads and closed when its endpoint goes away.
import { Pool } from 'undici';
import type { GatewaySettings } from '../config/settings.js';
import { upstreamTls, type UpstreamTls } from '../lib/upstream-tls.js';
import { RetryingClient } from './reused-connection-retry.js';

/**
 * How long an idle upstream connection is kept (undici's own default): under the idle timeout of the model servers'
 * HTTP servers (uvicorn's `timeout_keep_alive`, so vLLM's and SGLang's, and Node's are 5 s), so that tollgate closes
 * it first. It was the client-facing `server.keepAliveTimeout` (5 s): exactly as long, and requests raced the
 * server's close. A server that names its timeout (`keep-alive: timeout=N`) is kept N s less 2 s instead (undici's
 * keepAliveTimeoutThreshold).
 */
const UPSTREAM_IDLE_MS = 4000;

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  #settings: GatewaySettings['upstream'];
  #tls: UpstreamTls;

  constructor(settings: GatewaySettings) {
    this.#settings = settings.upstream;
    this.#tls = upstreamTls(settings.upstream);
  }

  /** How the pools check https model servers: the same object until the upstream settings change. */
  get tls(): UpstreamTls {
    return this.#tls;
  }

  get(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.#settings.connectionsPerEndpoint,
        pipelining: 1,
        keepAliveTimeout: UPSTREAM_IDLE_MS,
        connect: { timeout: this.#settings.connectTimeout, ...this.#tls },
        factory: (origin, options) => new RetryingClient(origin, options),
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /**
   * Keeps the pools of `origins`; the others finish what they carry, then close. Changed upstream settings replace
   * every pool the same way: the next request opens one with the new settings.
   */
  retain(origins: Set<string>, settings: GatewaySettings): void {
    const changed = settings.upstream !== this.#settings && JSON.stringify(settings.upstream) !== JSON.stringify(this.#settings);
    const { tlsRejectUnauthorized, ca } = settings.upstream;
    if (tlsRejectUnauthorized !== this.#settings.tlsRejectUnauthorized || ca !== this.#settings.ca) this.#tls = upstreamTls(settings.upstream);
    this.#settings = settings.upstream;
    for (const [origin, pool] of this.#pools) {
      if (changed || !origins.has(origin)) {
        this.#pools.delete(origin);
        pool.close().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}
