// tollgate_cache_events_total{policy,event}: what each cache policy did (its CacheStats), read at each scrape. A policy
// no compiled engine holds any more (deleted, renamed) leaves it with its counters (CacheResources.allStats).
import { Counter, type Registry } from 'prom-client';
import type { CacheResources } from './cache-resources.js';
import { CacheStats } from './cache-stats.js';

const EVENTS = Object.keys(new CacheStats());

export function registerCacheEvents(registry: Registry, caches: CacheResources): void {
  // What each policy's counters read at the last scrape: the counter takes what was added since, so rate() works as
  // on any counter. Keyed by the counters themselves, which a policy made again under a gone one's name replaces.
  const seen = new WeakMap<CacheStats, Record<string, number>>();
  const exposed = new Set<string>();
  const forget = (policy: string) => {
    for (const event of EVENTS) counter.remove({ policy, event });
    exposed.delete(policy);
  };
  const counter: Counter<'policy' | 'event'> = new Counter({
    name: 'tollgate_cache_events_total',
    help: 'Cache policy lookups, hits, misses, bypasses, stores, store errors and embedding failures',
    labelNames: ['policy', 'event'],
    registers: [registry],
    collect: () => {
      const live = caches.allStats();
      for (const policy of exposed) if (!live.has(policy)) forget(policy);
      for (const [policy, stats] of live) {
        let last = seen.get(stats);
        if (!last) {
          // Counts from 0 again, as after a restart: a counter going down would be refused.
          if (exposed.has(policy)) forget(policy);
          seen.set(stats, (last = {}));
        }
        exposed.add(policy);
        for (const [event, n] of Object.entries(stats) as [string, number][]) {
          counter.inc({ policy, event }, n - (last[event] ?? 0));
          last[event] = n;
        }
      }
    },
  });
}
