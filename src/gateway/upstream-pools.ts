// One undici connection pool per model-server origin, kept across config reloads and closed when its endpoint goes away.
import { Pool } from 'undici';
import type { GatewaySettings } from '../config/settings.js';

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  #settings: GatewaySettings['upstream'];
  #keepAliveMs: number;

  constructor(settings: GatewaySettings) {
    this.#settings = settings.upstream;
    this.#keepAliveMs = settings.server.keepAliveTimeout;
  }

  get(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.#settings.connectionsPerEndpoint,
        pipelining: 1,
        keepAliveTimeout: this.#keepAliveMs,
        connect: { timeout: this.#settings.connectTimeout, rejectUnauthorized: this.#settings.tlsRejectUnauthorized },
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /**
   * Keeps the pools of `origins`; the others finish what they carry, then close. Changed upstream settings (or
   * keep-alive timeout) replace every pool the same way: the next request opens one with the new settings.
   */
  retain(origins: Set<string>, settings: GatewaySettings): void {
    const changed =
      (settings.upstream !== this.#settings && JSON.stringify(settings.upstream) !== JSON.stringify(this.#settings)) ||
      settings.server.keepAliveTimeout !== this.#keepAliveMs;
    this.#settings = settings.upstream;
    this.#keepAliveMs = settings.server.keepAliveTimeout;
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
