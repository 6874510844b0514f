// How many script calls a Redis served, from `INFO commandstats` (every primary of a cluster): what `bench overhead
// --redis` divides by the requests of its Redis scenario, so the calls a request costs are measured in the run that
// quotes them. Counts every client's calls: a Redis other work uses at the same time inflates the figure.
import type { Cluster } from 'ioredis';
import { silentLogger } from '../src/lib/logger.js';
import { openCacheRedis, redisReady } from '../src/store/caches/redis.js';
import { closeRedis, type RedisClient } from '../src/store/redis-client.js';

/** EVAL and EVALSHA calls in an `INFO commandstats` answer. */
export function scriptCallsIn(info: string): number {
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

export class RedisCalls {
  readonly #client: RedisClient;

  constructor(url: string) {
    // The bench's other connection of its own (deleteKeysAt, at the end) is opened the same way.
    this.#client = openCacheRedis(url, silentLogger);
  }

  /**
   * The script calls served so far (summed over a cluster's primaries), or undefined when Redis will not say (INFO
   * refused by an ACL, the server away): the figure is then left out, never the benchmark's other results.
   */
  async total(): Promise<number | undefined> {
    try {
      await redisReady(this.#client, 5000);
      const servers = this.#client.isCluster ? (this.#client as Cluster).nodes('master') : [this.#client];
      const answers = await Promise.all(servers.map((s) => s.info('commandstats')));
      return answers.reduce((n, info) => n + scriptCallsIn(info), 0);
    } catch {
      return undefined;
    }
  }

  close(): Promise<void> {
    return closeRedis(this.#client);
  }
}
